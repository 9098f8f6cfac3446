// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// revocationsFloorKey is the entry of the owner's rollback state that keeps the highest revocation
// list seq seen (env ids are hex, so it cannot collide with one).
const revocationsFloorKey = "revocations"

// ErrNotAllowed means a machine key is not in the signed allowed set of the epoch it tried to read.
var ErrNotAllowed = vault.ErrNotAllowed

// Revocations fetches the account's signed machine revocation list and verifies it: the signature
// under the pinned key, the account, and a seq no lower than floor nor than the highest this device
// saw. A list rolled back to an older (shorter) one, or removed, is refused with vault.ErrRollback;
// one with an entry removed does not verify. No list at all (nothing revoked yet) is nil.
func (v *Vault) Revocations(ctx context.Context, floor uint64) (*envelope.Revocations, error) {
	floor = max(floor, v.HighWater.Get(revocationsFloorKey))
	s, err := v.Client.Revocations(ctx)
	if errors.Is(err, api.ErrNotFound) {
		if floor > 0 {
			return nil, tampered("verify the revocation list", fmt.Errorf("the server shows none, but seq %d was seen before: %w", floor, vault.ErrRollback))
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the revocation list: %w", err)
	}
	l, err := vault.VerifyRevocations(v.Account.SignPub, s.Raw, s.Sig, v.Account.ID, floor)
	if err != nil {
		return nil, tampered("verify the revocation list", err)
	}
	if err := v.HighWater.Raise(revocationsFloorKey, l.Seq); err != nil {
		return nil, err
	}
	return l, nil
}

// RecordRevocations appends machine ids (16 bytes each: the ids the revoked keys' grants name) to
// the account's signed revocation list and uploads it, retrying when another device appended first.
// Every later rotation leaves these keys out, whatever the server lists.
func (v *Vault) RecordRevocations(ctx context.Context, ids [][]byte) (*envelope.Revocations, error) {
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := v.Revocations(ctx, 0)
		if err != nil {
			return nil, err
		}
		next := cur.Add(v.Account.ID, uint64(v.now().Unix()), ids...)
		raw, sig, err := v.Account.Sign.SignRevocations(next)
		if err != nil {
			return nil, err
		}
		err = v.Client.PutRevocations(ctx, &api.Signed{Raw: raw, Sig: sig})
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store the revocation list: %w", err)
		}
		if err := v.HighWater.Raise(revocationsFloorKey, next.Seq); err != nil {
			return nil, err
		}
		return next, nil
	}
	return nil, fmt.Errorf("store the revocation list: %w", ErrConflict)
}

// Revoke puts the machines on the signed revocation list and re-signs the allowed set of the
// current epoch of every env their verified grants cover, without them. From then on an honest
// machine reader refuses them even where the server keeps their rows and wraps, and no rotation,
// from any device, re-wraps for them: a device with no state of its own still finds the list's new
// seq named by those allowed sets. It does not re-key anything: see Rotate.
func (v *Vault) Revoke(ctx context.Context, ms []MachineInfo) (*envelope.Revocations, error) {
	rl, err := v.RecordRevocations(ctx, RevocationIDs(ms))
	if err != nil {
		return nil, err
	}
	done := map[ScopeName]bool{}
	for _, m := range ms {
		if m.Grant == nil || m.Grant.AccountWide() {
			continue
		}
		for _, sc := range m.Grant.Scopes {
			n := ScopeName{sc.AppName, sc.EnvName}
			if done[n] {
				continue
			}
			done[n] = true
			if err := v.disallow(ctx, n, rl); err != nil {
				if errors.Is(err, ErrAppNotFound) || errors.Is(err, ErrEnvNotFound) {
					continue
				}
				return rl, err
			}
		}
	}
	return rl, nil
}

// disallow re-signs the allowed set of the current epoch of n without the machines on rl.
func (v *Vault) disallow(ctx context.Context, n ScopeName, rl *envelope.Revocations) error {
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := v.Read(ctx, n.App, n.Env)
		if err != nil {
			return err
		}
		old, err := v.currentAccess(cur)
		if err != nil || old == nil {
			cur.Wipe()
			return err
		}
		var entries []envelope.AccessEntry
		for _, e := range old.Entries {
			if !rl.Revoked(e.MachineID) {
				entries = append(entries, e)
			}
		}
		s, err := v.signAccess(cur.scope, cur.ek, old.Version+1, max(rl.Seq, old.RevocationsSeq), entries)
		if err == nil {
			err = v.Client.PutEnvAccess(ctx, cur.EnvID, cur.Epoch, s)
		}
		cur.Wipe()
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("re-sign the allowed set of %s: %w", n, err)
		}
		return nil
	}
	return fmt.Errorf("re-sign the allowed set of %s: %w", n, ErrConflict)
}

// RevocationIDs returns what to put on the revocation list for the listed machines: the machine id
// each verified grant names (the identity a rotation checks), and the listed id itself.
func RevocationIDs(ms []MachineInfo) [][]byte {
	var out [][]byte
	for _, m := range ms {
		if m.Grant != nil {
			out = append(out, bytes.Clone(m.Grant.MachineID))
		}
		if id, err := hex.DecodeString(m.MachineID); err == nil && len(id) == envelope.IDLen && (m.Grant == nil || !bytes.Equal(id, m.Grant.MachineID)) {
			out = append(out, id)
		}
	}
	return out
}

// verifyAccess verifies the signed allowed set of st's epoch for the scope (ids and epoch).
func verifyAccess(c *checker, st *api.EnvState, scope vault.Scope) (*envelope.EnvAccess, error) {
	if len(st.Access) == 0 {
		return nil, fmt.Errorf("the server has no signed allowed set for epoch %d: %w", st.Epoch, vault.ErrNotAllowed)
	}
	return vault.VerifyEnvAccess(st.Access, st.AccessSig, vault.AccessCheck{
		PublicKey: c.signPub, AccountID: c.accountID, AppID: scope.AppID, EnvID: scope.EnvID, Epoch: scope.Epoch, Cached: c.cached,
	})
}

// allowedMachine is a machine a rotation re-wraps for: its verified grant and that grant's bytes.
type allowedMachine struct {
	grant *envelope.Grant
	raw   []byte
}

// allowedFor decides, from signed data only, which machines may read the next epoch of the env:
// those with a grant that verifies under the pinned key, names the id the server lists it under,
// is in force now, covers the env by name and id, and whose machine id is neither on the verified
// revocation list nor being revoked. Each machine id counts once.
func allowedFor(machines []MachineInfo, rl *envelope.Revocations, gone map[string]bool, cur *Env) []allowedMachine {
	var out []allowedMachine
	seen := map[string]bool{}
	for _, m := range machines {
		g := m.Grant
		if g == nil || m.Expired || g.AccountWide() || !bytes.Equal(g.AccountID, cur.scope.AccountID) {
			continue // unverifiable, expired or not yet valid, account-wide (they use the account key)
		}
		id := hex.EncodeToString(g.MachineID)
		if seen[id] || gone[id] || gone[m.MachineID] || rl.Revoked(g.MachineID) {
			continue
		}
		sc, ok := g.Scope(cur.AppName, cur.EnvName)
		if !ok || !bytes.Equal(sc.AppID, cur.scope.AppID) || !bytes.Equal(sc.EnvID, cur.scope.EnvID) {
			continue
		}
		seen[id] = true
		out = append(out, allowedMachine{grant: g, raw: m.Machine.Grant})
	}
	return out
}

// signAccess signs the allowed set of cur's scope at epoch with ek, listing machines.
func (v *Vault) signAccess(scope vault.Scope, ek *vault.EnvKey, version, revSeq uint64, entries []envelope.AccessEntry) (*api.Signed, error) {
	ekID, err := vault.EKIDOf(ek, scope)
	if err != nil {
		return nil, err
	}
	a := &envelope.EnvAccess{
		AccountID: scope.AccountID, AppID: scope.AppID, EnvID: scope.EnvID, Epoch: scope.Epoch, EKID: ekID,
		Version: version, RevocationsSeq: revSeq, IssuedAt: uint64(v.now().Unix()), Entries: entries,
	}
	raw, sig, err := v.Account.Sign.SignEnvAccess(a)
	if err != nil {
		return nil, err
	}
	return &api.Signed{Raw: raw, Sig: sig}, nil
}

// currentAccess verifies the allowed set an owner read with cur (nil when the epoch has none yet).
func (v *Vault) currentAccess(cur *Env) (*envelope.EnvAccess, error) {
	if len(cur.access) == 0 {
		return nil, nil
	}
	a, err := vault.VerifyEnvAccess(cur.access, cur.accessSig, vault.AccessCheck{
		PublicKey: v.Account.SignPub, AccountID: cur.scope.AccountID, AppID: cur.scope.AppID, EnvID: cur.scope.EnvID, Epoch: cur.Epoch,
	})
	if err != nil {
		return nil, tampered("verify the allowed set of "+cur.AppName+"/"+cur.EnvName, err)
	}
	want, err := vault.EKIDOf(cur.ek, cur.scope)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(a.EKID, want) {
		return nil, tampered("verify the allowed set of "+cur.AppName+"/"+cur.EnvName, vault.ErrEKMismatch)
	}
	return a, nil
}
