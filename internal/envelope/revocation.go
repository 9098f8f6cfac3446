// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"fmt"
	"slices"
)

const (
	labelRevocations = "ov/v1/machine-revocations"
	labelEnvAccess   = "ov/v1/env-access"
)

// revocationEntryLen is lp(machine_id[16]) ‖ u64(revoked_at).
const revocationEntryLen = 2 + IDLen + 8

// accessEntryLen is lp(machine_id[16]) ‖ lp(grant_hash[32]).
const accessEntryLen = 2 + IDLen + 2 + HashLen

// Revocations is the account's signed, append-only list of revoked machine
// keys (crypto.md §2.8):
//
//	lp("ov/v1/machine-revocations") ‖ lp(aid) ‖ u64(seq) ‖ u64(issued_at)
//	‖ u32(n) ‖ n × (lp(machine_id) ‖ u64(revoked_at))
//
// Entries are strictly ascending by machine id. Seq starts at 1 and every new
// list has seq = previous + 1 and every entry of the previous one (the
// issuing client checks this before signing); readers keep the highest seq
// they saw as a floor, so an older list (one with fewer entries) is refused.
type Revocations struct {
	AccountID []byte // 16 bytes
	Seq       uint64
	IssuedAt  uint64 // Unix seconds
	Entries   []Revocation
}

// Revocation is one revoked machine key.
type Revocation struct {
	MachineID []byte // 16 bytes: the id the revoked key's grant names
	RevokedAt uint64 // Unix seconds
}

// Revoked reports whether machineID is on the list.
func (l *Revocations) Revoked(machineID []byte) bool {
	if l == nil {
		return false
	}
	_, ok := slices.BinarySearchFunc(l.Entries, machineID, func(e Revocation, id []byte) int { return bytes.Compare(e.MachineID, id) })
	return ok
}

// Add returns a copy of l with seq+1, issuedAt and the ids not yet on it,
// revoked at issuedAt; l itself is not modified (l nil is the empty list of
// seq 0).
func (l *Revocations) Add(accountID []byte, issuedAt uint64, ids ...[]byte) *Revocations {
	n := &Revocations{AccountID: bytes.Clone(accountID), IssuedAt: issuedAt, Seq: 1}
	if l != nil {
		n.Seq = l.Seq + 1
		n.Entries = slices.Clone(l.Entries)
	}
	for _, id := range ids {
		if !n.Revoked(id) {
			n.Entries = append(n.Entries, Revocation{MachineID: bytes.Clone(id), RevokedAt: issuedAt})
			slices.SortFunc(n.Entries, func(a, b Revocation) int { return bytes.Compare(a.MachineID, b.MachineID) })
		}
	}
	return n
}

// Marshal encodes l with its entries sorted by machine id. It does not
// validate: call [Revocations.Validate] before signing.
func (l *Revocations) Marshal() []byte {
	entries := slices.Clone(l.Entries)
	slices.SortStableFunc(entries, func(a, b Revocation) int { return bytes.Compare(a.MachineID, b.MachineID) })
	b := make([]byte, 0, 2+len(labelRevocations)+2+IDLen+20+len(entries)*revocationEntryLen)
	b = AppendLPString(b, labelRevocations)
	b = AppendLP(b, l.AccountID)
	b = AppendU64(b, l.Seq)
	b = AppendU64(b, l.IssuedAt)
	b = AppendU32(b, uint32(len(entries)))
	for _, e := range entries {
		b = AppendLP(b, e.MachineID)
		b = AppendU64(b, e.RevokedAt)
	}
	return b
}

// Validate checks lengths, seq ≥ 1 and that no machine id is listed twice.
// Errors wrap [ErrMalformed].
func (l *Revocations) Validate() error {
	if err := checkLen("account id", l.AccountID, IDLen); err != nil {
		return fmt.Errorf("envelope: validate revocations: %w", err)
	}
	if l.Seq == 0 {
		return fmt.Errorf("envelope: validate revocations: seq 0: %w", ErrMalformed)
	}
	ids := make([][]byte, 0, len(l.Entries))
	for i, e := range l.Entries {
		if err := checkLen(fmt.Sprintf("entry %d machine id", i), e.MachineID, IDLen); err != nil {
			return fmt.Errorf("envelope: validate revocations: %w", err)
		}
		ids = append(ids, e.MachineID)
	}
	if err := uniqueIDs(ids); err != nil {
		return fmt.Errorf("envelope: validate revocations: %w", err)
	}
	return nil
}

// ParseRevocations decodes a revocation list strictly (entries strictly
// ascending, no trailing bytes, seq ≥ 1). Errors wrap [ErrTruncated],
// [ErrMalformed] or [ErrTrailingData].
func ParseRevocations(b []byte) (*Revocations, error) {
	r := NewReader(b)
	r.Label(labelRevocations)
	l := &Revocations{
		AccountID: bytes.Clone(r.LPFixed("account id", IDLen)),
		Seq:       r.U64("seq"),
		IssuedAt:  r.U64("issued at"),
	}
	n := r.Count("entry count", revocationEntryLen)
	var prev []byte
	for i := 0; i < n && r.Err() == nil; i++ {
		e := Revocation{MachineID: bytes.Clone(r.LPFixed("machine id", IDLen)), RevokedAt: r.U64("revoked at")}
		if r.Err() != nil {
			break
		}
		if prev != nil && bytes.Compare(prev, e.MachineID) >= 0 {
			return nil, fmt.Errorf("envelope: parse revocations: entry %d: machine ids not strictly ascending: %w", i, ErrMalformed)
		}
		prev = e.MachineID
		l.Entries = append(l.Entries, e)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("envelope: parse revocations: %w", err)
	}
	if l.Seq == 0 {
		return nil, fmt.Errorf("envelope: parse revocations: seq 0: %w", ErrMalformed)
	}
	return l, nil
}

// EnvAccess is the signed set of machine keys allowed to read one epoch of an
// environment (crypto.md §2.8):
//
//	lp("ov/v1/env-access") ‖ lp(aid) ‖ lp(app_id) ‖ lp(env_id) ‖ u32(epoch)
//	‖ lp(ek_id) ‖ u64(version) ‖ u64(revocations_seq) ‖ u64(issued_at)
//	‖ u32(n) ‖ n × (lp(machine_id) ‖ lp(SHA-256(grant)))
//
// Entries are strictly ascending by machine id; each names the exact signed
// grant (its bytes' SHA-256) under which the machine was allowed. ek_id is the
// commitment of the epoch's environment key; version grows each time the set
// of the epoch is re-signed (a machine issued into it), and revocations_seq is
// the seq of the revocation list the set was computed against (a floor for
// that list).
type EnvAccess struct {
	AccountID      []byte
	AppID          []byte
	EnvID          []byte
	Epoch          uint32
	EKID           []byte
	Version        uint64
	RevocationsSeq uint64
	IssuedAt       uint64
	Entries        []AccessEntry
}

// AccessEntry is one machine key allowed to read an epoch.
type AccessEntry struct {
	MachineID []byte // 16 bytes
	GrantHash []byte // SHA-256 of the machine's signed grant bytes
}

// Lookup returns the entry of machineID.
func (a *EnvAccess) Lookup(machineID []byte) (AccessEntry, bool) {
	i, ok := slices.BinarySearchFunc(a.Entries, machineID, func(e AccessEntry, id []byte) int { return bytes.Compare(e.MachineID, id) })
	if !ok {
		return AccessEntry{}, false
	}
	return a.Entries[i], true
}

// Marshal encodes a with its entries sorted by machine id. It does not
// validate: call [EnvAccess.Validate] before signing.
func (a *EnvAccess) Marshal() []byte {
	entries := slices.Clone(a.Entries)
	slices.SortStableFunc(entries, func(x, y AccessEntry) int { return bytes.Compare(x.MachineID, y.MachineID) })
	b := make([]byte, 0, 2+len(labelEnvAccess)+3*(2+IDLen)+4+2+EKIDLen+28+len(entries)*accessEntryLen)
	b = AppendLPString(b, labelEnvAccess)
	b = AppendLP(b, a.AccountID)
	b = AppendLP(b, a.AppID)
	b = AppendLP(b, a.EnvID)
	b = AppendU32(b, a.Epoch)
	b = AppendLP(b, a.EKID)
	b = AppendU64(b, a.Version)
	b = AppendU64(b, a.RevocationsSeq)
	b = AppendU64(b, a.IssuedAt)
	b = AppendU32(b, uint32(len(entries)))
	for _, e := range entries {
		b = AppendLP(b, e.MachineID)
		b = AppendLP(b, e.GrantHash)
	}
	return b
}

// Validate checks lengths, version ≥ 1 and that no machine id is listed
// twice. Errors wrap [ErrMalformed].
func (a *EnvAccess) Validate() error {
	for _, c := range []struct {
		f string
		b []byte
		n int
	}{{"account id", a.AccountID, IDLen}, {"app id", a.AppID, IDLen}, {"env id", a.EnvID, IDLen}, {"ek id", a.EKID, EKIDLen}} {
		if err := checkLen(c.f, c.b, c.n); err != nil {
			return fmt.Errorf("envelope: validate env access: %w", err)
		}
	}
	if a.Version == 0 {
		return fmt.Errorf("envelope: validate env access: version 0: %w", ErrMalformed)
	}
	ids := make([][]byte, 0, len(a.Entries))
	for i, e := range a.Entries {
		if err := checkLen(fmt.Sprintf("entry %d machine id", i), e.MachineID, IDLen); err != nil {
			return fmt.Errorf("envelope: validate env access: %w", err)
		}
		if err := checkLen(fmt.Sprintf("entry %d grant hash", i), e.GrantHash, HashLen); err != nil {
			return fmt.Errorf("envelope: validate env access: %w", err)
		}
		ids = append(ids, e.MachineID)
	}
	if err := uniqueIDs(ids); err != nil {
		return fmt.Errorf("envelope: validate env access: %w", err)
	}
	return nil
}

// ParseEnvAccess decodes an allowed set strictly. Errors wrap
// [ErrTruncated], [ErrMalformed] or [ErrTrailingData].
func ParseEnvAccess(b []byte) (*EnvAccess, error) {
	r := NewReader(b)
	r.Label(labelEnvAccess)
	a := &EnvAccess{
		AccountID:      bytes.Clone(r.LPFixed("account id", IDLen)),
		AppID:          bytes.Clone(r.LPFixed("app id", IDLen)),
		EnvID:          bytes.Clone(r.LPFixed("env id", IDLen)),
		Epoch:          r.U32("epoch"),
		EKID:           bytes.Clone(r.LPFixed("ek id", EKIDLen)),
		Version:        r.U64("version"),
		RevocationsSeq: r.U64("revocations seq"),
		IssuedAt:       r.U64("issued at"),
	}
	n := r.Count("entry count", accessEntryLen)
	var prev []byte
	for i := 0; i < n && r.Err() == nil; i++ {
		e := AccessEntry{MachineID: bytes.Clone(r.LPFixed("machine id", IDLen)), GrantHash: bytes.Clone(r.LPFixed("grant hash", HashLen))}
		if r.Err() != nil {
			break
		}
		if prev != nil && bytes.Compare(prev, e.MachineID) >= 0 {
			return nil, fmt.Errorf("envelope: parse env access: entry %d: machine ids not strictly ascending: %w", i, ErrMalformed)
		}
		prev = e.MachineID
		a.Entries = append(a.Entries, e)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("envelope: parse env access: %w", err)
	}
	if a.Version == 0 {
		return nil, fmt.Errorf("envelope: parse env access: version 0: %w", ErrMalformed)
	}
	return a, nil
}

func uniqueIDs(ids [][]byte) error {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, bytes.Compare)
	for i := 1; i < len(ids); i++ {
		if bytes.Equal(ids[i-1], ids[i]) {
			return fmt.Errorf("machine id %x listed twice: %w", ids[i], ErrMalformed)
		}
	}
	return nil
}
