// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"testing"
)

// Every decoder is fuzzed; where a decoder accepts, marshalling its result
// must give back the input byte for byte (one encoding per value). The seeds
// come from the known-answer vectors and run in plain `go test`.

func FuzzParseManifest(f *testing.F) {
	v := loadVecs(f)
	raw := unhex(f, v.Manifest.Bytes)
	f.Add(raw)
	m, _ := ParseManifest(raw)
	m.Entries = nil
	f.Add(m.Marshal())
	f.Add(raw[:len(raw)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest fails Validate: %v", err)
		}
		if out := m.Marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse→marshal changed the bytes:\n in %x\nout %x", b, out)
		}
	})
}

func FuzzParseGrant(f *testing.F) {
	v := loadVecs(f)
	raw := unhex(f, v.Machine.GrantBytes)
	f.Add(raw)
	g, _ := ParseGrant(raw)
	g.Scopes = append(g.Scopes, GrantScope{AppID: make([]byte, 16), AppName: "a", EnvID: make([]byte, 16), EnvName: "é", SeqMin: 1})
	f.Add(g.Marshal())
	g.Scopes = nil
	f.Add(g.Marshal())
	g.Version, g.Flags, g.RevocationsSeq = GrantV2, GrantAccountWide, 3
	f.Add(g.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGrant(b)
		if err != nil {
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("parsed grant fails Validate: %v", err)
		}
		if out := g.Marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse→marshal changed the bytes:\n in %x\nout %x", b, out)
		}
		for _, s := range g.Scopes {
			if got, ok := g.Scope(s.AppName, s.EnvName); !ok || !bytes.Equal(got.EnvID, s.EnvID) {
				t.Fatalf("Scope(%q, %q) does not find its own scope", s.AppName, s.EnvName)
			}
		}
	})
}

func FuzzParseAPIToken(f *testing.F) {
	v := loadVecs(f)
	f.Add([]byte(v.APIKey.Token))
	f.Add([]byte(v.APIKey.Token[:len(v.APIKey.Token)-1] + "x"))
	f.Add([]byte("ovd_"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, secret, err := ParseAPIToken(b)
		if err != nil {
			return
		}
		if out := FormatAPIToken(id, &secret); !bytes.Equal(out, b) {
			t.Fatalf("parse→format changed the token: %q → %q", b, out)
		}
	})
}

func FuzzParseMachineToken(f *testing.F) {
	v := loadVecs(f)
	var id [IDLen]byte
	var auth [SecretLen]byte
	copy(id[:], unhex(f, v.Machine.MachineID))
	copy(auth[:], unhex(f, v.Machine.MachineAuth))
	f.Add(FormatMachineToken(id, &auth))
	f.Add([]byte(v.APIKey.Token))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, auth, err := ParseMachineToken(b)
		if err != nil {
			return
		}
		if out := FormatMachineToken(id, &auth); !bytes.Equal(out, b) {
			t.Fatalf("parse→format changed the token: %q → %q", b, out)
		}
	})
}

func FuzzCheckBlobs(f *testing.F) {
	v := loadVecs(f)
	for _, s := range []string{v.AccountKeyWrap.Wrapped, v.EnvKey.Wrapped, v.Machine.EnvKeyWrap, v.Machine.AccountWrap, v.Secrets[0].Record, v.Secrets[1].Record} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hdrOK := func(h []byte) bool { return h[0] == Version && h[1] == SuiteXChaCha20Poly1305 }
		if (CheckWrappedKey(b) == nil) != (len(b) == WrappedKeyLen && hdrOK(b)) {
			t.Fatal("CheckWrappedKey disagrees with the length rule")
		}
		if (CheckMachineWrap(b) == nil) != (len(b) == MachineWrapLen && hdrOK(b[KeyLen:])) {
			t.Fatal("CheckMachineWrap disagrees with the length rule")
		}
		if (CheckRecord(b) == nil) != (len(b) >= MinRecordLen && len(b) <= MaxRecordLen && hdrOK(b)) {
			t.Fatal("CheckRecord disagrees with the length rule")
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		x := r.LP("x")
		n := r.U32("n")
		if r.Err() != nil {
			return
		}
		out := AppendU32(AppendLP(nil, x), n)
		if !bytes.Equal(out, b[:len(out)]) || r.Len() != len(b)-len(out) {
			t.Fatal("reader and encoder disagree")
		}
	})
}
