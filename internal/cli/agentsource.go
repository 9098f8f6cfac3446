// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// agentCacheTTL is how long the agent answers from the server's last (verified) answer before asking
// again: `ov run` through a warm agent costs no network round trip, and a change on the server reaches
// the agent's callers within this time.
const agentCacheTTL = 10 * time.Second

// agentOpener turns the key the agent holds into a Source: the machine read path for a machine key,
// the account path (with this user's config for the server, device key and pinned signing key) for
// an account key.
func (a *App) agentOpener(log *logrus.Entry, maxAge time.Duration) agent.Opener {
	return func(ctx context.Context, k *agent.Key) (agent.Source, error) {
		switch k.Kind {
		case agent.KeyMachine:
			mk, err := vault.ParseMachineKeyFile(k.Bytes.Bytes())
			if err != nil {
				return nil, err
			}
			server, err := a.machineServerURL()
			if err != nil {
				mk.Wipe()
				return nil, err
			}
			r, err := remote.NewMachineReader(mk, remote.MachineReaderOptions{Server: server, StateDir: a.machineStateDir(),
				CacheDir: a.cacheDir(), MaxAge: maxAge, ClientCacheTTL: agentCacheTTL})
			if err != nil {
				mk.Wipe()
				return nil, err
			}
			r.Memo = remote.NewMemo() // verify and decrypt each state once; wiped with the key
			return &machineSource{log: log, mk: mk, r: r}, nil
		case agent.KeyAccount:
			cfg, err := a.loggedIn()
			if err != nil {
				return nil, err
			}
			defer cfg.wipe()
			if cfg.AccountID != fmt.Sprintf("%x", k.AccountID) {
				return nil, fmt.Errorf("open account key: it is for account %x, the config is for %s: %w", k.AccountID, cfg.AccountID, localapi.ErrDenied)
			}
			server, err := a.serverURL(cfg)
			if err != nil {
				return nil, err
			}
			cl, err := api.NewClient(server, api.ClientOptions{Token: cfg.DeviceToken, CacheTTL: agentCacheTTL})
			if err != nil {
				return nil, err
			}
			ak, err := vault.AccountKeyFromBytes(k.Bytes.Bytes())
			if err != nil {
				return nil, err
			}
			hw, err := remote.OpenHighWater(stateFile(a.stateDir(), "highwater.json"))
			if err != nil {
				ak.Wipe()
				return nil, err
			}
			hw.Soft = true
			acct := &remote.Account{ID: bytes.Clone(k.AccountID), AKVersion: k.AKVersion, AK: ak, SignPub: bytes.Clone(cfg.SignPub)}
			return &vaultSource{v: &remote.Vault{Client: cl, Account: acct, HighWater: hw, Memo: remote.NewMemo()}}, nil
		}
		return nil, fmt.Errorf("open %s key: not supported by this agent: %w", k.Kind, localapi.ErrDenied)
	}
}

type machineSource struct {
	log *logrus.Entry
	mk  *vault.MachineKey
	r   *remote.MachineReader
}

func (s *machineSource) Read(ctx context.Context, app, env string) (*remote.Env, error) {
	e, info, err := s.r.Read(ctx, app, env)
	if err != nil {
		return nil, err
	}
	if info.FromCache {
		s.log.WithFields(logrus.Fields{"app": app, "env": env, "fetched_at": info.FetchedAt.UTC().Format(time.RFC3339)}).
			Warn("server unreachable; served the verified cached copy")
	}
	return e, nil
}

// Wipe wipes the key and what the memo holds (the agent calls it on lock, idle lock and reload).
func (s *machineSource) Wipe() { s.r.Memo.Wipe(); s.mk.Wipe() }

type vaultSource struct{ v *remote.Vault }

func (s *vaultSource) Read(ctx context.Context, app, env string) (*remote.Env, error) {
	return s.v.Read(ctx, app, env)
}

// Wipe wipes the key and what the memo holds (the agent calls it on lock, idle lock and reload).
func (s *vaultSource) Wipe() { s.v.Memo.Wipe(); s.v.Account.Wipe() }
