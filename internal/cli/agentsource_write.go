// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
)

// Scopes lists every env of the account, for the agent's SCOPES request (agent.ScopeLister).
func (s *vaultSource) Scopes(ctx context.Context) ([]localapi.Scope, error) {
	list, err := s.v.Client.Apps(ctx)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := []localapi.Scope{}
	for _, a := range list.Apps {
		for _, e := range a.Envs {
			out = append(out, localapi.Scope{App: a.Name, Env: e.Name})
		}
	}
	return out, nil
}

// signMu guards the signing key that Set unwraps on first use (vaultSource has no field for a lock).
var signMu sync.Mutex

// signingKey gives the account the signing key a write needs: the agent is unlocked with the account
// key only, so the key is unwrapped from the account bundle on the first write, and must match the
// signing key this device pinned.
func (s *vaultSource) signingKey(ctx context.Context) error {
	signMu.Lock()
	defer signMu.Unlock()
	acct := s.v.Account
	if acct.Sign != nil {
		return nil
	}
	b, err := s.v.Client.Account(ctx)
	if err != nil {
		return fmt.Errorf("fetch account: %w", err)
	}
	if b.AKVersion != acct.AKVersion {
		return fmt.Errorf("the account key changed (version %d, the agent holds %d): unlock the agent again", b.AKVersion, acct.AKVersion)
	}
	sk, err := acct.AK.UnwrapSigningKey(b.WrappedSignSeed, acct.ID, b.AKVersion)
	if err != nil {
		return fmt.Errorf("unwrap signing key: %w", err)
	}
	if len(acct.SignPub) == 0 || subtle.ConstantTimeCompare(sk.Public(), acct.SignPub) != 1 {
		sk.Wipe()
		return fmt.Errorf("unwrap signing key: %w", remote.ErrSigningKeyMismatch)
	}
	acct.Sign = sk
	return nil
}

// Set writes one secret with a signed manifest, for the agent's GENERATE request (agent.Writer).
func (s *vaultSource) Set(ctx context.Context, app, env, name string, value []byte, create bool) (uint64, bool, error) {
	if s.v.Account == nil || s.v.Account.AK == nil {
		return 0, false, errors.New("set: no account key")
	}
	if err := s.signingKey(ctx); err != nil {
		return 0, false, err
	}
	res, err := s.v.Write(ctx, app, env, create, func(*remote.Env) (*remote.Change, error) {
		return &remote.Change{Set: []remote.Secret{{Name: name, Value: value}}}, nil
	})
	if err != nil {
		return 0, false, err
	}
	if res.Change == nil || len(res.Change.Set) != 1 {
		return 0, false, fmt.Errorf("set %s in %s/%s: nothing was written", name, app, env)
	}
	return res.Change.Set[0].Version, res.Created, nil
}
