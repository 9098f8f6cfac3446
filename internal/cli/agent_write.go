// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"

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

// Set writes one secret with a signed manifest, for the agent's GENERATE request (agent.Writer).
func (s *vaultSource) Set(ctx context.Context, app, env, name string, value []byte, create bool) (uint64, bool, error) {
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
