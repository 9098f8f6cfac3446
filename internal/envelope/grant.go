// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"fmt"

	"golang.org/x/text/unicode/norm"
)

const (
	labelGrant   = "ov/v1/machine-grant"
	labelGrantV2 = "ov/v2/machine-grant"
)

// Grant versions.
const (
	// GrantV1 is the original format (label "ov/v1/machine-grant"): an
	// account-wide grant has no scopes and no floors.
	GrantV1 = 1
	// GrantV2 (label "ov/v2/machine-grant") adds a flags byte (account-wide),
	// the account's revocation list seq at issue time, and, for an
	// account-wide grant, a signed rollback floor for every environment that
	// existed at issue time (in Scopes).
	GrantV2 = 2
)

// GrantAccountWide is the flag of a v2 grant whose key holds the account key.
const GrantAccountWide = 0x01

// grantScopeMinLen is the smallest encoded scope: two 16-byte ids, two
// one-byte names and seq_min.
const grantScopeMinLen = 2 + IDLen + 2 + 1 + 2 + IDLen + 2 + 1 + 8

// Grant is the statement, signed by the account signing key, of what one
// machine key may read (crypto.md §2.1 step 3). Version 1:
//
//	lp("ov/v1/machine-grant") ‖ lp(aid) ‖ lp(machine_id) ‖ lp(x_pk)
//	‖ u64(not_before) ‖ u64(not_after)
//	‖ u32(n) ‖ n × (lp(app_id) ‖ lp(app_name) ‖ lp(env_id) ‖ lp(env_name) ‖ u64(seq_min))
//
// Version 2 (crypto.md §2.8):
//
//	lp("ov/v2/machine-grant") ‖ lp(aid) ‖ lp(machine_id) ‖ lp(x_pk)
//	‖ u64(not_before) ‖ u64(not_after) ‖ u8(flags) ‖ u64(revocations_seq)
//	‖ u32(n) ‖ n × (lp(app_id) ‖ lp(app_name) ‖ lp(env_id) ‖ lp(env_name) ‖ u64(seq_min))
//
// NotAfter 0 means no expiry. In a scoped grant the n entries are the scopes.
// An account-wide machine key (crypto.md §2.1 step 6) is one whose access
// comes from an account-key wrap: in v1 it has no entries; in v2 it carries the
// [GrantAccountWide] flag and its entries are not scopes but the signed
// rollback floors (seq_min) of every environment that existed at issue time.
// Version 0 marshals as version 1.
type Grant struct {
	Version    int    // GrantV1 or GrantV2 (0 = GrantV1)
	AccountID  []byte // 16 bytes
	MachineID  []byte // 16 bytes
	MachinePub []byte // the machine's X25519 public key, 32 bytes
	NotBefore  uint64 // Unix seconds
	NotAfter   uint64 // Unix seconds; 0 = never expires
	// Flags (v2 only): GrantAccountWide or 0.
	Flags uint8
	// RevocationsSeq (v2 only) is the seq of the account's signed revocation
	// list when the grant was issued: a floor for that list.
	RevocationsSeq uint64
	Scopes         []GrantScope
}

// AccountWide reports whether the grant is for an account-wide machine key:
// a v2 grant with the flag, or a v1 grant without scopes.
func (g *Grant) AccountWide() bool {
	if g.Version == GrantV2 {
		return g.Flags&GrantAccountWide != 0
	}
	return len(g.Scopes) == 0
}

// Floor returns the signed rollback floor the grant gives the environment
// named (appName, envName): its entry's seq_min and env id, by NFC name.
func (g *Grant) Floor(appName, envName string) (GrantScope, bool) { return g.Scope(appName, envName) }

// GrantScope is one (app, env) a [Grant] covers.
type GrantScope struct {
	AppID   []byte // 16 bytes
	AppName string // NFC
	EnvID   []byte // 16 bytes
	EnvName string // NFC
	SeqMin  uint64 // rollback floor for a machine with no state
}

// Marshal encodes g, scopes in the order given. It does not validate: call
// [Grant.Validate] before signing. It panics if a field is longer than
// [MaxLP].
func (g *Grant) Marshal() []byte {
	b := make([]byte, 0, 128+len(g.Scopes)*96)
	if g.Version == GrantV2 {
		b = AppendLPString(b, labelGrantV2)
	} else {
		b = AppendLPString(b, labelGrant)
	}
	b = AppendLP(b, g.AccountID)
	b = AppendLP(b, g.MachineID)
	b = AppendLP(b, g.MachinePub)
	b = AppendU64(b, g.NotBefore)
	b = AppendU64(b, g.NotAfter)
	if g.Version == GrantV2 {
		b = append(b, g.Flags)
		b = AppendU64(b, g.RevocationsSeq)
	}
	b = AppendU32(b, uint32(len(g.Scopes)))
	for _, s := range g.Scopes {
		b = AppendLP(b, s.AppID)
		b = AppendLPString(b, s.AppName)
		b = AppendLP(b, s.EnvID)
		b = AppendLPString(b, s.EnvName)
		b = AppendU64(b, s.SeqMin)
	}
	return b
}

// Validate checks lengths, names (non-empty, at most [MaxNameLen] bytes, UTF-8,
// NFC), that NotAfter is 0 or after NotBefore, and that no (app_id, env_id)
// and no (app_name, env_name) appears twice. Errors wrap [ErrMalformed] or
// [ErrBadName].
func (g *Grant) Validate() error {
	if err := g.validate(); err != nil {
		return fmt.Errorf("envelope: validate grant: %w", err)
	}
	return nil
}

func (g *Grant) validate() error {
	switch g.Version {
	case 0, GrantV1:
		if g.Flags != 0 || g.RevocationsSeq != 0 {
			return fmt.Errorf("a version 1 grant has no flags or revocations seq: %w", ErrMalformed)
		}
	case GrantV2:
		if g.Flags&^GrantAccountWide != 0 {
			return fmt.Errorf("grant flags %#x: %w", g.Flags, ErrMalformed)
		}
	default:
		return fmt.Errorf("grant version %d: %w", g.Version, ErrMalformed)
	}
	if err := checkLen("account id", g.AccountID, IDLen); err != nil {
		return err
	}
	if err := checkLen("machine id", g.MachineID, IDLen); err != nil {
		return err
	}
	if err := checkLen("machine public key", g.MachinePub, KeyLen); err != nil {
		return err
	}
	if g.NotAfter != 0 && g.NotAfter <= g.NotBefore {
		return fmt.Errorf("not_after %d is not after not_before %d: %w", g.NotAfter, g.NotBefore, ErrMalformed)
	}
	if uint64(len(g.Scopes)) > uint64(^uint32(0)) {
		return fmt.Errorf("%d scopes: %w", len(g.Scopes), ErrMalformed)
	}
	ids := make(map[[2 * IDLen]byte]bool, len(g.Scopes))
	names := make(map[[2]string]bool, len(g.Scopes))
	for i, s := range g.Scopes {
		if err := checkLen(fmt.Sprintf("scope %d app id", i), s.AppID, IDLen); err != nil {
			return err
		}
		if err := checkLen(fmt.Sprintf("scope %d env id", i), s.EnvID, IDLen); err != nil {
			return err
		}
		if err := CheckName(s.AppName); err != nil {
			return fmt.Errorf("scope %d app name: %w", i, err)
		}
		if err := CheckName(s.EnvName); err != nil {
			return fmt.Errorf("scope %d env name: %w", i, err)
		}
		var id [2 * IDLen]byte
		copy(id[:], s.AppID)
		copy(id[IDLen:], s.EnvID)
		if ids[id] {
			return fmt.Errorf("scope %d: app id and env id listed twice: %w", i, ErrMalformed)
		}
		ids[id] = true
		nm := [2]string{s.AppName, s.EnvName}
		if names[nm] {
			return fmt.Errorf("scope %d: %q/%q listed twice: %w", i, s.AppName, s.EnvName, ErrMalformed)
		}
		names[nm] = true
	}
	return nil
}

// Scope returns the scope named (appName, envName), comparing NFC forms
// exactly. Lookup is by name on purpose: the names are signed, so the server
// cannot re-map "production" to another env id (crypto.md §2.2).
func (g *Grant) Scope(appName, envName string) (GrantScope, bool) {
	appName, envName = norm.NFC.String(appName), norm.NFC.String(envName)
	for _, s := range g.Scopes {
		if s.AppName == appName && s.EnvName == envName {
			return s, true
		}
	}
	return GrantScope{}, false
}

// ParseGrant decodes a grant (version 1 or 2) strictly and then applies [Grant.Validate]. The
// result does not alias b. Errors wrap [ErrTruncated], [ErrMalformed],
// [ErrBadName] or [ErrTrailingData].
func ParseGrant(b []byte) (*Grant, error) {
	r := NewReader(b)
	g := &Grant{Version: GrantV1}
	switch label := string(r.LP("label")); {
	case r.Err() != nil:
	case label == labelGrantV2:
		g.Version = GrantV2
	default:
		r = NewReader(b)
		r.Label(labelGrant)
	}
	g.AccountID = bytes.Clone(r.LPFixed("account id", IDLen))
	g.MachineID = bytes.Clone(r.LPFixed("machine id", IDLen))
	g.MachinePub = bytes.Clone(r.LPFixed("machine public key", KeyLen))
	g.NotBefore = r.U64("not_before")
	g.NotAfter = r.U64("not_after")
	if g.Version == GrantV2 {
		g.Flags = r.U8("flags")
		g.RevocationsSeq = r.U64("revocations seq")
	}
	n := r.Count("scope count", grantScopeMinLen)
	if r.Err() == nil {
		g.Scopes = make([]GrantScope, 0, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		s := GrantScope{
			AppID:   bytes.Clone(r.LPFixed("app id", IDLen)),
			AppName: string(r.LP("app name")),
			EnvID:   bytes.Clone(r.LPFixed("env id", IDLen)),
			EnvName: string(r.LP("env name")),
			SeqMin:  r.U64("seq_min"),
		}
		g.Scopes = append(g.Scopes, s)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("envelope: parse grant: %w", err)
	}
	if err := g.validate(); err != nil {
		return nil, fmt.Errorf("envelope: parse grant: %w", err)
	}
	return g, nil
}
