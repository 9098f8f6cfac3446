// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
//
// Who keeps access is decided from signed data only (allowedFor): a grant that verifies, names the
// id it is listed under, is in force, covers the env, and whose machine id is not on the verified
// revocation list (no older than this device's floor nor the current allowed set's). The new
// epoch's signed allowed set lists exactly those machines; it is stored before the commit.
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
	// Only rows the server still lists are deleted with the commit (an earlier scope's rotation may
	// have deleted them already); what keeps them out is gone and the signed revocation list.
	var listed []string
	for _, m := range machines {
		if gone[m.MachineID] {
			listed = append(listed, m.MachineID)
			if m.Grant != nil {
				gone[hex.EncodeToString(m.Grant.MachineID)] = true
			}
		}
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
		old, err := v.currentAccess(cur)
		if err != nil {
			cur.Wipe()
			return nil, err
		}
		// The revocation list may not be older than any signed statement that names its seq: this
		// device's own floor (in Revocations), the current allowed set, and every grant.
		var floor uint64
		if old != nil {
			floor = old.RevocationsSeq
		}
		for _, m := range machines {
			if m.Grant != nil {
				floor = max(floor, m.Grant.RevocationsSeq)
			}
		}
		rl, err := v.Revocations(ctx, floor)
		if err != nil {
			cur.Wipe()
			return nil, err
		}
		res, err := v.rotate(ctx, cur, allowedFor(machines, rl, gone, cur), rl, listed)
		cur.Wipe()
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		return res, err
	}
	return nil, fmt.Errorf("rotate %s/%s: %w", appName, envName, ErrConflict)
}

func (v *Vault) rotate(ctx context.Context, cur *Env, allowed []allowedMachine, rl *envelope.Revocations, revoke []string) (*RotateResult, error) {
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
	var entries []envelope.AccessEntry
	for _, m := range allowed {
		// The machine id and public key come from inside the signed grant, never from the listing.
		id := hex.EncodeToString(m.grant.MachineID)
		w, err := vault.WrapEnvKeyToMachine(ek, newScope, m.grant.MachineID, m.grant.MachinePub)
		if err != nil {
			return nil, fmt.Errorf("re-wrap for machine %s: %w", id, err)
		}
		rot.MachineWraps = append(rot.MachineWraps, api.MachineWrap{MachineID: id, AppID: cur.AppID, EnvID: cur.EnvID, Epoch: newScope.Epoch, Wrap: w})
		res.Rewrapped = append(res.Rewrapped, id)
		entries = append(entries, envelope.AccessEntry{MachineID: bytes.Clone(m.grant.MachineID), GrantHash: vault.GrantHash(m.raw)})
	}
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].MachineID, entries[j].MachineID) < 0 })
	var revSeq uint64
	if rl != nil {
		revSeq = rl.Seq
	}
	// A version above any earlier attempt at this epoch (the store keeps the highest).
	access, err := v.signAccess(newScope, ek, uint64(max(v.now().UnixMicro(), 1)), revSeq, entries)
	if err != nil {
		return nil, err
	}
	if err := v.Client.PutEnvAccess(ctx, cur.EnvID, newScope.Epoch, access); err != nil {
		return nil, fmt.Errorf("rotate %s/%s: store the allowed set of epoch %d: %w", cur.AppName, cur.EnvName, newScope.Epoch, err)
	}
	commit := &api.Commit{ExpectedSeq: cur.Seq, Rotate: rot}
	commit.RevokeMachines = slices.Clone(revoke)
	sort.Strings(commit.RevokeMachines)
	var mEntries []envelope.ManifestEntry
	for _, s := range cur.Secrets {
		rec, err := c.Seal(s.Name, s.Version, s.Value)
		if err != nil {
			return nil, err
		}
		ent, err := c.Entry(s.Name, s.Version, rec)
		if err != nil {
			return nil, err
		}
		mEntries = append(mEntries, ent)
		commit.Put = append(commit.Put, api.Record{Blind: bytes.Clone(ent.Blind), Version: s.Version, Record: rec})
	}
	sort.Slice(mEntries, func(i, j int) bool { return bytes.Compare(mEntries[i].Blind, mEntries[j].Blind) < 0 })
	m := c.Manifest(cur.Seq+1, uint64(v.now().Unix()), mEntries)
	m.Prev = vault.ChainPrev(cur.manifestRaw, cur.Seq)
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
