// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func id16(b byte) []byte { return bytes.Repeat([]byte{b}, IDLen) }

func sampleRevocations() *Revocations {
	return (*Revocations)(nil).Add(id16(0xa0), 1767225600, id16(3), id16(1))
}

func sampleAccess() *EnvAccess {
	return &EnvAccess{
		AccountID: id16(0xa0), AppID: id16(0xb0), EnvID: id16(0xc0), Epoch: 2, EKID: id16(0x58),
		Version: 3, RevocationsSeq: 1, IssuedAt: 1767225600,
		Entries: []AccessEntry{{MachineID: id16(1), GrantHash: bytes.Repeat([]byte{9}, HashLen)}, {MachineID: id16(2), GrantHash: bytes.Repeat([]byte{8}, HashLen)}},
	}
}

func TestRevocationsRoundTripAndAppend(t *testing.T) {
	l := sampleRevocations()
	if l.Seq != 1 || len(l.Entries) != 2 || !bytes.Equal(l.Entries[0].MachineID, id16(1)) {
		t.Fatalf("Add: %+v", l)
	}
	raw := l.Marshal()
	back, err := ParseRevocations(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Marshal(), raw) || !back.Revoked(id16(3)) || back.Revoked(id16(2)) {
		t.Fatalf("round trip: %+v", back)
	}
	// Append-only: the next list keeps every entry, adds the new one once, and bumps seq.
	next := back.Add(back.AccountID, 1767225700, id16(2), id16(1))
	if next.Seq != 2 || len(next.Entries) != 3 || !next.Revoked(id16(1)) || !next.Revoked(id16(2)) || !next.Revoked(id16(3)) {
		t.Fatalf("next: %+v", next)
	}
	if len(back.Entries) != 2 {
		t.Fatal("Add changed the list it was called on")
	}
	var nilList *Revocations
	if nilList.Revoked(id16(1)) {
		t.Fatal("the empty list revokes something")
	}
}

func TestRevocationsStrict(t *testing.T) {
	raw := sampleRevocations().Marshal()
	for n := range len(raw) {
		if _, err := ParseRevocations(raw[:n]); err == nil {
			t.Fatalf("truncated to %d: accepted", n)
		}
	}
	if _, err := ParseRevocations(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrTrailingData) {
		t.Fatal(err)
	}
	unsorted := sampleRevocations()
	unsorted.Entries[0], unsorted.Entries[1] = unsorted.Entries[1], unsorted.Entries[0]
	b := AppendLPString(nil, labelRevocations)
	b = AppendLP(b, unsorted.AccountID)
	b = AppendU64(b, 1)
	b = AppendU64(b, 0)
	b = AppendU32(b, 2)
	for _, e := range unsorted.Entries {
		b = AppendLP(b, e.MachineID)
		b = AppendU64(b, e.RevokedAt)
	}
	if _, err := ParseRevocations(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unsorted entries: %v", err)
	}
	cases := map[string]func(l *Revocations){
		"seq 0":            func(l *Revocations) { l.Seq = 0 },
		"short machine id": func(l *Revocations) { l.Entries[0].MachineID = l.Entries[0].MachineID[:15] },
		"duplicate":        func(l *Revocations) { l.Entries = append(l.Entries, l.Entries[0]) },
		"short account id": func(l *Revocations) { l.AccountID = l.AccountID[:1] },
	}
	for name, mut := range cases {
		l := sampleRevocations()
		mut(l)
		if err := l.Validate(); err == nil {
			t.Errorf("%s: Validate accepted", name)
		}
		if _, err := ParseRevocations(l.Marshal()); err == nil {
			t.Errorf("%s: ParseRevocations accepted", name)
		}
	}
	// Another statement's bytes are not a revocation list.
	if _, err := ParseRevocations(sampleAccess().Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an allowed set parsed as a revocation list: %v", err)
	}
}

func TestEnvAccessRoundTripAndStrict(t *testing.T) {
	raw := sampleAccess().Marshal()
	a, err := ParseEnvAccess(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Marshal(), raw) {
		t.Fatal("round trip changed the bytes")
	}
	if e, ok := a.Lookup(id16(2)); !ok || e.GrantHash[0] != 8 {
		t.Fatalf("Lookup: %+v %v", e, ok)
	}
	if _, ok := a.Lookup(id16(3)); ok {
		t.Fatal("Lookup found a machine not listed")
	}
	for n := range len(raw) {
		if _, err := ParseEnvAccess(raw[:n]); err == nil {
			t.Fatalf("truncated to %d: accepted", n)
		}
	}
	if _, err := ParseEnvAccess(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrTrailingData) {
		t.Fatal(err)
	}
	cases := map[string]func(a *EnvAccess){
		"version 0":        func(a *EnvAccess) { a.Version = 0 },
		"short ek id":      func(a *EnvAccess) { a.EKID = a.EKID[:8] },
		"short grant hash": func(a *EnvAccess) { a.Entries[0].GrantHash = a.Entries[0].GrantHash[:31] },
		"duplicate":        func(a *EnvAccess) { a.Entries = append(a.Entries, a.Entries[0]) },
		"short env id":     func(a *EnvAccess) { a.EnvID = nil },
	}
	for name, mut := range cases {
		a := sampleAccess()
		mut(a)
		if err := a.Validate(); err == nil {
			t.Errorf("%s: Validate accepted", name)
		}
		if _, err := ParseEnvAccess(a.Marshal()); err == nil {
			t.Errorf("%s: ParseEnvAccess accepted", name)
		}
	}
}

func TestGrantV2(t *testing.T) {
	v := loadVecs(t)
	g1, err := ParseGrant(unhex(t, v.Machine.GrantBytes))
	if err != nil {
		t.Fatal(err)
	}
	if g1.Version != GrantV1 || g1.AccountWide() {
		t.Fatalf("the v1 vector parsed as %+v", g1)
	}
	g := *g1
	g.Version, g.RevocationsSeq = GrantV2, 7
	raw := g.Marshal()
	if bytes.Equal(raw, g1.Marshal()) {
		t.Fatal("v2 marshals as v1")
	}
	back, err := ParseGrant(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Version != GrantV2 || back.RevocationsSeq != 7 || back.AccountWide() || !bytes.Equal(back.Marshal(), raw) {
		t.Fatalf("v2 round trip: %+v", back)
	}
	// Account-wide v2: the flag, and its entries are floors (not scopes).
	g.Flags = GrantAccountWide
	back, err = ParseGrant(g.Marshal())
	if err != nil || !back.AccountWide() {
		t.Fatalf("account-wide v2: %+v, %v", back, err)
	}
	if fl, ok := back.Floor("myapp", "production"); !ok || fl.SeqMin != 42 {
		t.Fatalf("floor: %+v %v", fl, ok)
	}
	for name, mut := range map[string]func(g *Grant){
		"unknown flag":           func(g *Grant) { g.Flags = 0x02 },
		"v1 with flags":          func(g *Grant) { g.Version, g.Flags = GrantV1, GrantAccountWide },
		"v1 with revocation seq": func(g *Grant) { g.Version, g.Flags, g.RevocationsSeq = GrantV1, 0, 1 },
		"version 3":              func(g *Grant) { g.Version = 3 },
	} {
		c := g
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted", name)
		}
	}
	bad := g
	bad.Flags = 0x02
	if _, err := ParseGrant(bad.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown flag parsed: %v", err)
	}
}

func FuzzParseRevocations(f *testing.F) {
	f.Add(sampleRevocations().Marshal())
	f.Add((*Revocations)(nil).Add(id16(1), 0).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseRevocations(b)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("parsed list fails Validate: %v", err)
		}
		if out := l.Marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse→marshal changed the bytes:\n in %x\nout %x", b, out)
		}
	})
}

func FuzzParseEnvAccess(f *testing.F) {
	f.Add(sampleAccess().Marshal())
	a := sampleAccess()
	a.Entries = nil
	f.Add(a.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseEnvAccess(b)
		if err != nil {
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("parsed set fails Validate: %v", err)
		}
		if out := a.Marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse→marshal changed the bytes:\n in %x\nout %x", b, out)
		}
	})
}
