// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// RotateResult reports one rotated environment.
type RotateResult struct {
	Scope     ScopeName
	Epoch     uint32
	Seq       uint64
	Rewrapped []string // machines that keep access, re-wrapped from their public keys
}

// Rotate gives appName/envName a new environment key (a new epoch): every record is re-sealed under
// it, the manifest is signed anew, the scoped machines that keep access are re-wrapped from the
// public keys in their verified grants, and the machines in revoke are deleted, all in one commit.
// A revoked machine cannot read anything written afterwards.
func (v *Vault) Rotate(ctx context.Context, appName, envName string, revoke []string) (*RotateResult, error) {
	appName, envName, err := normalize(appName, envName)
	if err != nil {
		return nil, err
	}
	machines, err := v.Machines(ctx)
	if err != nil {
		return nil, err
	}
	gone := map[string]bool{}
	for _, id := range revoke {
		gone[id] = true
	}
	for attempt := 0; attempt < 5; attempt++ {
		app, env, err := v.find(ctx, appName, envName)
		if err != nil {
			return nil, err
		}
		cur, err := v.read(ctx, app, env)
		if err != nil {
			return nil, err
		}
		res, err := v.rotate(ctx, cur, machines, gone)
		cur.Wipe()
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		return res, err
	}
	return nil, fmt.Errorf("rotate %s/%s: %w", appName, envName, ErrConflict)
}

func (v *Vault) rotate(ctx context.Context, cur *Env, machines []MachineInfo, gone map[string]bool) (*RotateResult, error) {
	newScope := cur.scope
	newScope.Epoch = cur.Epoch + 1
	ek := vault.NewEnvKey()
	defer ek.Wipe()
	c, err := vault.NewEnvCipher(ek, newScope)
	if err != nil {
		return nil, err
	}
	defer c.Wipe()
	wrapped, err := v.Account.AK.WrapEnvKey(ek, newScope)
	if err != nil {
		return nil, err
	}
	res := &RotateResult{Scope: ScopeName{cur.AppName, cur.EnvName}, Epoch: newScope.Epoch, Seq: cur.Seq + 1}
	rot := &api.Rotation{Epoch: newScope.Epoch, WrappedEK: wrapped}
	for _, m := range machines {
		if gone[m.MachineID] || m.Grant == nil || len(m.Grant.Scopes) == 0 {
			continue // revoked, unverifiable, or account-wide (those unwrap the new key with the account key)
		}
		if _, ok := m.Grant.Scope(cur.AppName, cur.EnvName); !ok {
			continue
		}
		w, err := vault.WrapEnvKeyToMachine(ek, newScope, m.Grant.MachineID, m.Grant.MachinePub)
		if err != nil {
			return nil, fmt.Errorf("re-wrap for machine %s: %w", m.MachineID, err)
		}
		rot.MachineWraps = append(rot.MachineWraps, api.MachineWrap{MachineID: m.MachineID, AppID: cur.AppID, EnvID: cur.EnvID, Epoch: newScope.Epoch, Wrap: w})
		res.Rewrapped = append(res.Rewrapped, m.MachineID)
	}
	commit := &api.Commit{ExpectedSeq: cur.Seq, Rotate: rot}
	for id := range gone {
		commit.RevokeMachines = append(commit.RevokeMachines, id)
	}
	sort.Strings(commit.RevokeMachines)
	var entries []envelope.ManifestEntry
	for _, s := range cur.Secrets {
		rec, err := c.Seal(s.Name, s.Version, s.Value)
		if err != nil {
			return nil, err
		}
		ent, err := c.Entry(s.Name, s.Version, rec)
		if err != nil {
			return nil, err
		}
		entries = append(entries, ent)
		commit.Put = append(commit.Put, api.Record{Blind: bytes.Clone(ent.Blind), Version: s.Version, Record: rec})
	}
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].Blind, entries[j].Blind) < 0 })
	m := c.Manifest(cur.Seq+1, uint64(v.now().Unix()), entries)
	raw, sig, err := v.Account.Sign.SignManifest(m)
	if err != nil {
		return nil, err
	}
	commit.Manifest, commit.ManifestSig = raw, sig
	out, err := v.Client.Commit(ctx, cur.EnvID, commit)
	if err != nil {
		return nil, fmt.Errorf("rotate %s/%s: %w", cur.AppName, cur.EnvName, err)
	}
	if out.Seq != m.Seq {
		return nil, tampered("rotate "+cur.AppName+"/"+cur.EnvName, fmt.Errorf("server acknowledged seq %d, sent %d", out.Seq, m.Seq))
	}
	if err := v.HighWater.Raise(cur.EnvID, m.Seq); err != nil {
		return nil, err
	}
	return res, nil
}

// MachineIDOf returns the hex id of a machine key.
func MachineIDOf(mk *vault.MachineKey) string {
	id := mk.ID()
	return hex.EncodeToString(id[:])
}
