// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"fmt"

	"golang.org/x/text/unicode/norm"
)

const labelGrant = "ov/v1/machine-grant"

// grantScopeMinLen is the smallest encoded scope: two 16-byte ids, two
// one-byte names and seq_min.
const grantScopeMinLen = 2 + IDLen + 2 + 1 + 2 + IDLen + 2 + 1 + 8

// Grant is the statement, signed by the account signing key, of what one
// machine key may read (crypto.md §2.1 step 3):
//
//	lp("ov/v1/machine-grant") ‖ lp(aid) ‖ lp(machine_id) ‖ lp(x_pk)
//	‖ u64(not_before) ‖ u64(not_after)
//	‖ u32(n) ‖ n × (lp(app_id) ‖ lp(app_name) ‖ lp(env_id) ‖ lp(env_name) ‖ u64(seq_min))
//
// NotAfter 0 means no expiry. A grant with no scopes grants nothing by name; an
// account-wide machine key (crypto.md §2.1 step 6) is one whose access comes
// from an account-key wrap, not from grant scopes.
type Grant struct {
	AccountID  []byte // 16 bytes
	MachineID  []byte // 16 bytes
	MachinePub []byte // the machine's X25519 public key, 32 bytes
	NotBefore  uint64 // Unix seconds
	NotAfter   uint64 // Unix seconds; 0 = never expires
	Scopes     []GrantScope
}

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
	b = AppendLPString(b, labelGrant)
	b = AppendLP(b, g.AccountID)
	b = AppendLP(b, g.MachineID)
	b = AppendLP(b, g.MachinePub)
	b = AppendU64(b, g.NotBefore)
	b = AppendU64(b, g.NotAfter)
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

// ParseGrant decodes a grant strictly and then applies [Grant.Validate]. The
// result does not alias b. Errors wrap [ErrTruncated], [ErrMalformed],
// [ErrBadName] or [ErrTrailingData].
func ParseGrant(b []byte) (*Grant, error) {
	r := NewReader(b)
	r.Label(labelGrant)
	g := &Grant{
		AccountID:  bytes.Clone(r.LPFixed("account id", IDLen)),
		MachineID:  bytes.Clone(r.LPFixed("machine id", IDLen)),
		MachinePub: bytes.Clone(r.LPFixed("machine public key", KeyLen)),
		NotBefore:  r.U64("not_before"),
		NotAfter:   r.U64("not_after"),
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
