// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"fmt"
	"slices"
)

const labelManifest = "ov/v1/manifest"

// labelManifestChained labels a chained manifest (crypto.md §1.6.1): the v1 layout with
// lp(prev) after issued_at, where prev is the SHA-256 of the predecessor's raw bytes.
const labelManifestChained = "ov/v2/manifest"

// manifestEntryLen is the encoded size of one entry:
// lp(blind[16]) ‖ u64(version) ‖ lp(hash[32]).
const manifestEntryLen = 2 + BlindLen + 8 + 2 + HashLen

// Manifest is the per-environment list of records that the account signing
// key signs (crypto.md §1.6):
//
//	lp("ov/v1/manifest") ‖ lp(aid) ‖ lp(app_id) ‖ lp(env_id) ‖ u32(epoch)
//	‖ lp(ek_id) ‖ u64(seq) ‖ u64(issued_at)
//	‖ u32(n) ‖ n × ( lp(blind) ‖ u64(version) ‖ lp(SHA-256(record)) )
//
// Entries are encoded sorted by blind id. Verifying a signature over the bytes
// is internal/vault's job; this package only encodes and decodes.
type Manifest struct {
	AccountID []byte // 16 bytes
	AppID     []byte // 16 bytes
	EnvID     []byte // 16 bytes
	Epoch     uint32 // EK epoch
	EKID      []byte // 16-byte commitment to the EK
	Seq       uint64 // monotonic sequence number
	IssuedAt  uint64 // Unix seconds
	// Prev, when set (32 bytes), makes the manifest a chained one (label ov/v2/manifest): it is
	// the SHA-256 of the raw bytes of the manifest of seq-1, or 32 zero bytes for seq 1. Nil for
	// an unchained v1 manifest.
	Prev    []byte
	Entries []ManifestEntry
}

// Chained reports whether m is a chained (v2) manifest.
func (m *Manifest) Chained() bool { return m.Prev != nil }

// ManifestEntry is one secret in a [Manifest].
type ManifestEntry struct {
	Blind      []byte // 16-byte blind id of the secret's name
	Version    uint64 // record version
	RecordHash []byte // SHA-256 of the record, 32 bytes
}

// Marshal encodes m with its entries sorted by blind id; m itself is not
// modified. It does not validate: call [Manifest.Validate] before signing (a
// manifest that fails Validate does not survive [ParseManifest]). It panics if
// a field is longer than [MaxLP].
func (m *Manifest) Marshal() []byte {
	entries := slices.Clone(m.Entries)
	slices.SortStableFunc(entries, func(a, b ManifestEntry) int { return bytes.Compare(a.Blind, b.Blind) })
	b := make([]byte, 0, 2+len(labelManifestChained)+3*(2+IDLen)+4+2+EKIDLen+8+8+2+HashLen+4+len(entries)*manifestEntryLen)
	if m.Prev != nil {
		b = AppendLPString(b, labelManifestChained)
	} else {
		b = AppendLPString(b, labelManifest)
	}
	b = AppendLP(b, m.AccountID)
	b = AppendLP(b, m.AppID)
	b = AppendLP(b, m.EnvID)
	b = AppendU32(b, m.Epoch)
	b = AppendLP(b, m.EKID)
	b = AppendU64(b, m.Seq)
	b = AppendU64(b, m.IssuedAt)
	if m.Prev != nil {
		b = AppendLP(b, m.Prev)
	}
	b = AppendU32(b, uint32(len(entries)))
	for _, e := range entries {
		b = AppendLP(b, e.Blind)
		b = AppendU64(b, e.Version)
		b = AppendLP(b, e.RecordHash)
	}
	return b
}

// Validate checks field lengths and that blind ids are unique. Errors wrap
// [ErrMalformed].
func (m *Manifest) Validate() error {
	if err := checkLen("account id", m.AccountID, IDLen); err != nil {
		return fmt.Errorf("envelope: validate manifest: %w", err)
	}
	if err := checkLen("app id", m.AppID, IDLen); err != nil {
		return fmt.Errorf("envelope: validate manifest: %w", err)
	}
	if err := checkLen("env id", m.EnvID, IDLen); err != nil {
		return fmt.Errorf("envelope: validate manifest: %w", err)
	}
	if err := checkLen("ek id", m.EKID, EKIDLen); err != nil {
		return fmt.Errorf("envelope: validate manifest: %w", err)
	}
	if m.Prev != nil {
		if err := checkLen("prev hash", m.Prev, HashLen); err != nil {
			return fmt.Errorf("envelope: validate manifest: %w", err)
		}
	}
	blinds := make([][]byte, 0, len(m.Entries))
	for i, e := range m.Entries {
		if err := checkLen(fmt.Sprintf("entry %d blind id", i), e.Blind, BlindLen); err != nil {
			return fmt.Errorf("envelope: validate manifest: %w", err)
		}
		if err := checkLen(fmt.Sprintf("entry %d record hash", i), e.RecordHash, HashLen); err != nil {
			return fmt.Errorf("envelope: validate manifest: %w", err)
		}
		blinds = append(blinds, e.Blind)
	}
	slices.SortFunc(blinds, bytes.Compare)
	for i := 1; i < len(blinds); i++ {
		if bytes.Equal(blinds[i-1], blinds[i]) {
			return fmt.Errorf("envelope: validate manifest: blind id %x listed twice: %w", blinds[i], ErrMalformed)
		}
	}
	if uint64(len(m.Entries)) > uint64(^uint32(0)) {
		return fmt.Errorf("envelope: validate manifest: %d entries: %w", len(m.Entries), ErrMalformed)
	}
	return nil
}

// Lookup returns the entry with the given blind id.
func (m *Manifest) Lookup(blind []byte) (ManifestEntry, bool) {
	for _, e := range m.Entries {
		if bytes.Equal(e.Blind, blind) {
			return e, true
		}
	}
	return ManifestEntry{}, false
}

// ParseManifest decodes a manifest, unchained (v1) or chained (v2), strictly: the label, every fixed length,
// entries strictly ascending by blind id (so unique), and no trailing bytes.
// The result does not alias b. Errors wrap [ErrTruncated], [ErrMalformed] or
// [ErrTrailingData].
func ParseManifest(b []byte) (*Manifest, error) {
	r := NewReader(b)
	chained := false
	if label := r.LP("label"); r.Err() == nil {
		switch string(label) {
		case labelManifest:
		case labelManifestChained:
			chained = true
		default:
			return nil, fmt.Errorf("envelope: parse manifest: label: got %q, want %q or %q: %w", label, labelManifest, labelManifestChained, ErrMalformed)
		}
	}
	m := &Manifest{
		AccountID: bytes.Clone(r.LPFixed("account id", IDLen)),
		AppID:     bytes.Clone(r.LPFixed("app id", IDLen)),
		EnvID:     bytes.Clone(r.LPFixed("env id", IDLen)),
		Epoch:     r.U32("epoch"),
		EKID:      bytes.Clone(r.LPFixed("ek id", EKIDLen)),
		Seq:       r.U64("seq"),
		IssuedAt:  r.U64("issued at"),
	}
	if chained {
		m.Prev = bytes.Clone(r.LPFixed("prev hash", HashLen))
	}
	n := r.Count("entry count", manifestEntryLen)
	if r.Err() == nil {
		m.Entries = make([]ManifestEntry, 0, n)
	}
	var prev []byte
	for i := 0; i < n && r.Err() == nil; i++ {
		e := ManifestEntry{
			Blind:      bytes.Clone(r.LPFixed("blind id", BlindLen)),
			Version:    r.U64("version"),
			RecordHash: bytes.Clone(r.LPFixed("record hash", HashLen)),
		}
		if r.Err() != nil {
			break
		}
		if prev != nil && bytes.Compare(prev, e.Blind) >= 0 {
			return nil, fmt.Errorf("envelope: parse manifest: entry %d: blind ids not strictly ascending: %w", i, ErrMalformed)
		}
		prev = e.Blind
		m.Entries = append(m.Entries, e)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("envelope: parse manifest: %w", err)
	}
	return m, nil
}

func checkLen(field string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("%s is %d bytes, want %d: %w", field, len(b), n, ErrMalformed)
	}
	return nil
}
