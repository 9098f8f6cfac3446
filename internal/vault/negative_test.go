// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// The negative tests of crypto.md §6.3 that concern this package.

func vectorCipher(t testing.TB, f *fixture) *EnvCipher {
	t.Helper()
	c, err := NewEnvCipher(f.ek, f.scope)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRecordRejected(t *testing.T) {
	f := newFixture(t)
	c := vectorCipher(t, f)
	in := f.v.Inputs.Secret1
	rec := unhex(t, f.v.Secrets[0].Record)

	otherEnv := f.scope
	otherEnv.EnvID = bytes.Repeat([]byte{0xc1}, 16)
	cOtherEnv, _ := NewEnvCipher(f.ek, otherEnv)
	otherEpoch := f.scope
	otherEpoch.Epoch++
	cOtherEpoch, _ := NewEnvCipher(f.ek, otherEpoch)
	otherApp := f.scope
	otherApp.AppID = bytes.Repeat([]byte{0xb1}, 16)
	cOtherApp, _ := NewEnvCipher(f.ek, otherApp)

	cases := []struct {
		name    string
		c       *EnvCipher
		secret  string
		version uint64
		rec     []byte
		want    error
	}{
		{"another name", c, "STRIPE_KEY", in.Version, rec, ErrAuth},
		{"name case", c, "database_url", in.Version, rec, ErrAuth},
		{"version+1", c, in.Name, in.Version + 1, rec, ErrAuth},
		{"version-1", c, in.Name, in.Version - 1, rec, ErrAuth},
		{"another env id", cOtherEnv, in.Name, in.Version, rec, ErrAuth},
		{"another app id", cOtherApp, in.Name, in.Version, rec, ErrAuth},
		{"another epoch", cOtherEpoch, in.Name, in.Version, rec, ErrAuth},
		{"suite byte flipped", c, in.Name, in.Version, flip(rec, 1, 0x03), envelope.ErrBadHeader},
		{"suite byte 0x02 (reserved AES-GCM)", c, in.Name, in.Version, setByte(rec, 1, 0x02), envelope.ErrBadHeader},
		{"version byte flipped", c, in.Name, in.Version, flip(rec, 0, 0x01), envelope.ErrBadHeader},
		{"empty", c, in.Name, in.Version, nil, envelope.ErrBadLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.c.Open(tc.secret, tc.version, tc.rec)
			if !errors.Is(err, tc.want) || v != nil {
				t.Fatalf("Open = %q, %v; want %v", v, err, tc.want)
			}
		})
	}
	t.Run("every bit flipped", func(t *testing.T) {
		for i := range rec {
			for bit := range 8 {
				r := flip(rec, i, 1<<bit)
				if v, err := c.Open(in.Name, in.Version, r); err == nil {
					t.Fatalf("byte %d bit %d flipped: opened %q", i, bit, v)
				}
				if _, _, err := c.OpenUnnamed(in.Version, r); err == nil {
					t.Fatalf("byte %d bit %d flipped: OpenUnnamed succeeded", i, bit)
				}
			}
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(rec) {
			if _, err := c.Open(in.Name, in.Version, rec[:n]); err == nil {
				t.Fatalf("truncated to %d bytes: opened", n)
			}
		}
		if _, err := c.Open(in.Name, in.Version, append(bytes.Clone(rec), 0)); err == nil {
			t.Fatal("extended by one byte: opened")
		}
	})
}

// TestRecordEmbeddedNameMismatch seals a record whose AAD names one secret
// and whose plaintext embeds another (only a writer holding EK can make it);
// Open must refuse it.
func TestRecordEmbeddedNameMismatch(t *testing.T) {
	f := newFixture(t)
	c := vectorCipher(t, f)
	aead, err := chacha20poly1305.NewX(c.enc.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	hdr := envelope.Header()
	nonce := make([]byte, nonceLen)
	for _, embedded := range []string{"OTHER", "NOPE", "NAM", ""} { // longer, same length, shorter, empty
		pt := envelope.AppendLPString(nil, embedded)
		pt = append(pt, "value"...)
		rec := aead.Seal(append(append([]byte{}, hdr[:]...), nonce...), nonce, pt, c.recordAAD("NAME", 1))
		if v, err := c.Open("NAME", 1, rec); !errors.Is(err, ErrRecordMismatch) {
			t.Errorf("embedded %q: Open = %q, %v; want ErrRecordMismatch", embedded, v, err)
		}
		if _, _, err := c.OpenUnnamed(1, rec); err == nil {
			t.Errorf("embedded %q: OpenUnnamed accepted a record whose embedded name differs from its AAD", embedded)
		}
	}
}

func TestRecordNamesAreNFC(t *testing.T) {
	f := newFixture(t)
	c := vectorCipher(t, f)
	nfc, nfd := "caf\u00e9", "cafe\u0301"
	rec, err := c.Seal(nfd, 1, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Open(nfc, 1, rec); err != nil || string(v) != "v" {
		t.Fatalf("open NFC of an NFD-sealed record: %q, %v", v, err)
	}
	b1, _ := c.Blind(nfc)
	b2, _ := c.Blind(nfd)
	if b1 != b2 {
		t.Fatal("blind ids of NFC and NFD spellings differ")
	}
	if name, _, err := c.OpenUnnamed(1, rec); err != nil || name != nfc {
		t.Fatalf("OpenUnnamed = %q, %v; want NFC %q", name, err, nfc)
	}
	for _, bad := range []string{"", strings.Repeat("x", envelope.MaxNameLen+1), "\xff"} {
		if _, err := c.Seal(bad, 1, nil); !errors.Is(err, envelope.ErrBadName) {
			t.Errorf("Seal(%q) = %v; want ErrBadName", bad, err)
		}
	}
	if _, err := c.Seal("BIG", 1, make([]byte, envelope.MaxValueLen+1)); !errors.Is(err, envelope.ErrBadLength) {
		t.Errorf("oversized value: %v", err)
	}
	rec, err = c.Seal("BIG", 1, make([]byte, envelope.MaxValueLen))
	if err != nil || envelope.CheckRecord(rec) != nil {
		t.Errorf("largest value: %v / %v", err, envelope.CheckRecord(rec))
	}
}

func TestEnvKeyWrapBindsNames(t *testing.T) {
	f := newFixture(t)
	w := unhex(t, f.v.EnvKey.Wrapped)
	if _, err := f.ak.UnwrapEnvKey(w, f.scope); err != nil {
		t.Fatal(err)
	}
	mutate := map[string]func(s *Scope){
		"env name staging":    func(s *Scope) { s.EnvName = "staging" },
		"app name":            func(s *Scope) { s.AppName = "otherapp" },
		"names swapped":       func(s *Scope) { s.AppName, s.EnvName = s.EnvName, s.AppName },
		"env id":              func(s *Scope) { s.EnvID = bytes.Repeat([]byte{0xc1}, 16) },
		"app id":              func(s *Scope) { s.AppID = bytes.Repeat([]byte{0xb1}, 16) },
		"account id":          func(s *Scope) { s.AccountID = bytes.Repeat([]byte{0xa1}, 16) },
		"epoch":               func(s *Scope) { s.Epoch = 2 },
		"env name trailing ␠": func(s *Scope) { s.EnvName = "production " },
	}
	for name, m := range mutate {
		t.Run(name, func(t *testing.T) {
			s := f.scope
			m(&s)
			if ek, err := f.ak.UnwrapEnvKey(w, s); !errors.Is(err, ErrAuth) || ek != nil {
				t.Fatalf("UnwrapEnvKey = %v; want ErrAuth", err)
			}
		})
	}
	t.Run("another account key", func(t *testing.T) {
		if _, err := NewAccountKey().UnwrapEnvKey(w, f.scope); !errors.Is(err, ErrAuth) {
			t.Fatalf("got %v; want ErrAuth", err)
		}
	})
	t.Run("lengths", func(t *testing.T) {
		for _, n := range []int{0, 73, 75} {
			b := make([]byte, n)
			copy(b, w)
			if _, err := f.ak.UnwrapEnvKey(b, f.scope); !errors.Is(err, envelope.ErrBadLength) {
				t.Errorf("%d bytes: %v; want ErrBadLength", n, err)
			}
		}
	})
}

func TestWrongPasswordOrASK(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	v := f.v
	keyCheck := unhex(t, v.KDF.KeyCheck)
	// The wrapped AK is garbage: key_check must fail first, so ErrAuth
	// (which would mean the AEAD was tried) must not appear.
	garbage := make([]byte, envelope.WrappedKeyLen)
	cases := map[string]struct {
		pw  []byte
		ask *AccountSecretKey
	}{
		"wrong password":    {[]byte("correct horse battery stapler"), f.ask},
		"trailing space":    {[]byte(v.Inputs.Password + " "), f.ask},
		"wrong ASK":         {[]byte(v.Inputs.Password), NewAccountSecretKey()},
		"wrong both":        {[]byte("x"), NewAccountSecretKey()},
		"password as ASK?!": {f.ask.Bytes(), f.ask},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pk, err := DerivePasswordKeys(tc.pw, tc.ask, f.aid, f.params)
			if err != nil {
				t.Fatal(err)
			}
			if err := pk.CheckKeyCheck(keyCheck); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("CheckKeyCheck = %v", err)
			}
			ak, err := pk.UnwrapAccountKey(keyCheck, garbage, v.Inputs.AKVersion)
			if !errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrAuth) || ak != nil {
				t.Fatalf("UnwrapAccountKey = %v; want ErrWrongPassword before any AEAD", err)
			}
			if err.Error() != "vault: unlock account: wrong password or Account Secret Key" {
				t.Errorf("message %q", err)
			}
		})
	}
	t.Run("right secrets, truncated stored key check", func(t *testing.T) {
		pk, _ := DerivePasswordKeys([]byte(v.Inputs.Password), f.ask, f.aid, f.params)
		if err := pk.CheckKeyCheck(keyCheck[:31]); !errors.Is(err, ErrWrongPassword) {
			t.Fatal(err)
		}
	})
	t.Run("other account id", func(t *testing.T) {
		pk, _ := DerivePasswordKeys([]byte(v.Inputs.Password), f.ask, bytes.Repeat([]byte{1}, 16), f.params)
		if err := pk.CheckKeyCheck(keyCheck); !errors.Is(err, ErrWrongPassword) {
			t.Fatal(err)
		}
	})
	t.Run("empty password", func(t *testing.T) {
		if _, err := DerivePasswordKeys(nil, f.ask, f.aid, f.params); err == nil {
			t.Fatal("empty password accepted")
		}
	})
}

func TestAccountKeyWrapBindsParams(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	v := f.v
	kek := keyFrom(unhex(t, v.KDF.KEK))
	w := unhex(t, v.AccountKeyWrap.Wrapped)
	if _, err := unwrapAccountKey(&kek, w, f.aid, v.Inputs.AKVersion, f.params); err != nil {
		t.Fatal(err)
	}
	alter := map[string]func(p *KDFParams, ver *uint32){
		"t=4":          func(p *KDFParams, _ *uint32) { p.Time = 4 },
		"t=2":          func(p *KDFParams, _ *uint32) { p.Time = 2 },
		"m":            func(p *KDFParams, _ *uint32) { p.MemoryKiB *= 2 },
		"p":            func(p *KDFParams, _ *uint32) { p.Threads = 1 },
		"salt":         func(p *KDFParams, _ *uint32) { p.Salt = bytes.Repeat([]byte{9}, 16) },
		"ak_version+1": func(_ *KDFParams, ver *uint32) { *ver++ },
		"ak_version 0": func(_ *KDFParams, ver *uint32) { *ver = 0 },
	}
	for name, fn := range alter {
		t.Run(name, func(t *testing.T) {
			p := f.params
			p.Salt = bytes.Clone(p.Salt)
			ver := v.Inputs.AKVersion
			fn(&p, &ver)
			if ak, err := unwrapAccountKey(&kek, w, f.aid, ver, p); !errors.Is(err, ErrAuth) || ak != nil {
				t.Fatalf("unwrap = %v; want ErrAuth", err)
			}
		})
	}
	t.Run("via PasswordKeys with altered ak_version", func(t *testing.T) {
		pk, _ := DerivePasswordKeys([]byte(v.Inputs.Password), f.ask, f.aid, f.params)
		if _, err := pk.UnwrapAccountKey(unhex(t, v.KDF.KeyCheck), w, v.Inputs.AKVersion+1); !errors.Is(err, ErrAuth) {
			t.Fatal(err)
		}
	})
}

func TestPasswordChangeRewrapsOneBlob(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	old, _ := DerivePasswordKeys([]byte("old password"), f.ask, f.aid, f.params)
	ak := NewAccountKey()
	w := old.WrapAccountKey(ak, 1)
	oldCheck := old.KeyCheck()

	p2 := f.params
	p2.Salt = bytes.Repeat([]byte{7}, 16)
	nw, _ := DerivePasswordKeys([]byte("new password"), f.ask, f.aid, p2)
	got, err := old.UnwrapAccountKey(oldCheck[:], w, 1)
	if err != nil {
		t.Fatal(err)
	}
	w2 := nw.WrapAccountKey(got, 1)
	newCheck := nw.KeyCheck()
	back, err := nw.UnwrapAccountKey(newCheck[:], w2, 1)
	if err != nil || !back.Equal(&ak.Key) {
		t.Fatalf("unwrap after change: %v", err)
	}
	if _, err := old.UnwrapAccountKey(oldCheck[:], w2, 1); !errors.Is(err, ErrAuth) {
		t.Fatalf("old KEK opened the new wrap: %v", err)
	}
	if old.LoginVerifier() == nw.LoginVerifier() {
		t.Fatal("login verifier unchanged by password change")
	}
}

func TestKDFParamsBounds(t *testing.T) {
	salt := bytes.Repeat([]byte{1}, 16)
	const MiB, GiB = 1 << 10, 1 << 20 // in KiB
	cases := []struct {
		name string
		p    KDFParams
		ok   bool
	}{
		{"production defaults", KDFParams{3, 256 * MiB, 4, salt}, true},
		{"RFC 9106 first option", KDFParams{1, 2 * GiB, 4, salt}, true},
		{"RFC 9106 second option", KDFParams{3, 64 * MiB, 4, salt}, true},
		{"ceilings", KDFParams{10, 4 * GiB, 16, salt}, true},
		{"below floor: 32 MiB even with t=6", KDFParams{6, 32 * MiB, 4, salt}, false},
		{"below floor: vectors' 64 KiB", KDFParams{3, 64, 4, salt}, false},
		{"t=1 with 64 MiB", KDFParams{1, 64 * MiB, 4, salt}, false},
		{"t=2 with 64 MiB", KDFParams{2, 64 * MiB, 4, salt}, false},
		{"t=0", KDFParams{0, 256 * MiB, 4, salt}, false},
		{"t=11", KDFParams{11, 64 * MiB, 4, salt}, false},
		{"m=8 GiB", KDFParams{3, 8 * GiB, 4, salt}, false},
		{"m=4 GiB + 1 KiB", KDFParams{3, 4*GiB + 1, 4, salt}, false},
		{"8-byte salt", KDFParams{3, 256 * MiB, 4, salt[:8]}, false},
		{"no salt", KDFParams{3, 256 * MiB, 4, nil}, false},
		{"17-byte salt", KDFParams{3, 256 * MiB, 4, append(bytes.Clone(salt), 0)}, false},
		{"64 lanes", KDFParams{3, 256 * MiB, 64, salt}, false},
		{"17 lanes", KDFParams{3, 256 * MiB, 17, salt}, false},
		{"0 lanes", KDFParams{3, 256 * MiB, 0, salt}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate() // UseTestKDF is not active here
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrKDFParams)) {
				t.Fatalf("Validate = %v; want ok=%v", err, tc.ok)
			}
			q, err := ParseKDFParams(tc.p.Encode())
			if tc.ok != (err == nil) {
				t.Fatalf("ParseKDFParams = %v; want ok=%v", err, tc.ok)
			}
			if tc.ok && !bytes.Equal(q.Encode(), tc.p.Encode()) {
				t.Fatal("ParseKDFParams did not round-trip")
			}
			if !tc.ok {
				if _, err := DerivePasswordKeys([]byte("pw"), NewAccountSecretKey(), salt, tc.p); !errors.Is(err, ErrKDFParams) {
					t.Fatalf("DerivePasswordKeys = %v; want ErrKDFParams before any work", err)
				}
			}
		})
	}
	t.Run("test escape lowers only the floor", func(t *testing.T) {
		useTestKDF(t)
		if err := (KDFParams{3, 64, 4, salt}).Validate(); err != nil {
			t.Fatalf("vector params with the test escape: %v", err)
		}
		for _, p := range []KDFParams{{3, 8 * GiB, 4, salt}, {3, 64, 64, salt}, {0, 64, 4, salt}, {3, 64, 4, salt[:8]}, {3, 31, 4, salt}} {
			if err := p.Validate(); !errors.Is(err, ErrKDFParams) {
				t.Errorf("%+v accepted with the test escape", p)
			}
		}
	})
	t.Run("new params are the defaults with a fresh salt", func(t *testing.T) {
		a, b := NewKDFParams(), NewKDFParams()
		if a.Validate() != nil || a.Time != 3 || a.MemoryKiB != 256*MiB || a.Threads != 4 || bytes.Equal(a.Salt, b.Salt) {
			t.Fatalf("NewKDFParams = %+v", a)
		}
	})
	t.Run("encoding is strict", func(t *testing.T) {
		good := KDFParams{3, 256 * MiB, 4, salt}.Encode()
		for name, b := range map[string][]byte{
			"tag":      setByte(good, 0, 2),
			"version":  setByte(good, 1, 0x10),
			"trailing": append(bytes.Clone(good), 0),
			"short":    good[:len(good)-1],
		} {
			if _, err := ParseKDFParams(b); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

func signedVectorManifest(t testing.TB, f *fixture, mutate func(m *envelope.Manifest)) (raw, sig []byte) {
	t.Helper()
	m, err := envelope.ParseManifest(unhex(t, f.v.Manifest.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(m)
	}
	raw, sig, err = f.sk.SignManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw, sig
}

func TestManifestChecks(t *testing.T) {
	f := newFixture(t)
	v := f.v
	raw, sig := unhex(t, v.Manifest.Bytes), unhex(t, v.Manifest.Signature)
	check := ManifestCheck{PublicKey: f.sk.Public(), AccountID: f.aid, AppID: f.scope.AppID, EnvID: f.scope.EnvID, HighWater: 42}
	if _, err := VerifyManifest(raw, sig, check); err != nil {
		t.Fatalf("seq == high-water refused: %v", err)
	}
	t.Run("seq below high-water is rollback", func(t *testing.T) {
		c := check
		c.HighWater = 43
		_, err := VerifyManifest(raw, sig, c)
		if !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "rollback") {
			t.Fatalf("got %v; want ErrRollback", err)
		}
		m, _ := envelope.ParseManifest(raw)
		if err := CheckHighWater(m, 43); !errors.Is(err, ErrRollback) {
			t.Fatal(err)
		}
		if err := CheckHighWater(m, 41); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("altered entry is a bad signature", func(t *testing.T) {
		for _, off := range []int{len(raw) - 1, len(raw) - 40, len(raw) - 60, 20, 70} {
			r := flip(raw, off, 0x01)
			if _, err := VerifyManifest(r, sig, check); !errors.Is(err, ErrBadSignature) {
				t.Errorf("byte %d flipped: %v; want ErrBadSignature", off, err)
			}
		}
		for i := range sig {
			if _, err := VerifyManifest(raw, flip(sig, i, 0x80), check); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("signature byte %d flipped: %v", i, err)
			}
		}
	})
	t.Run("signed by another key", func(t *testing.T) {
		c := check
		c.PublicKey = NewSigningKey().Public()
		if _, err := VerifyManifest(raw, sig, c); !errors.Is(err, ErrBadSignature) {
			t.Fatal(err)
		}
		c.PublicKey = c.PublicKey[:31]
		if _, err := VerifyManifest(raw, sig, c); !errors.Is(err, ErrBadSignature) {
			t.Fatal(err)
		}
	})
	t.Run("validly signed manifest of another env", func(t *testing.T) {
		r, s := signedVectorManifest(t, f, func(m *envelope.Manifest) { m.EnvID = bytes.Repeat([]byte{0xc1}, 16) })
		if _, err := VerifyManifest(r, s, check); !errors.Is(err, ErrWrongEnv) {
			t.Fatal(err)
		}
	})
	t.Run("ek_id of a server-chosen key", func(t *testing.T) {
		m, _ := VerifyManifest(raw, sig, check)
		if _, err := NewEnvReader(m, NewEnvKey()); !errors.Is(err, ErrEKMismatch) {
			t.Fatal(err)
		}
	})
}

func TestReadSecretsFailsClosed(t *testing.T) {
	f := newFixture(t)
	v := f.v
	recs := map[string][]byte{}
	blinds := map[string][envelope.BlindLen]byte{}
	for _, s := range v.Secrets {
		recs[s.Name] = unhex(t, s.Record)
		var b [envelope.BlindLen]byte
		copy(b[:], unhex(t, s.BlindID))
		blinds[s.Name] = b
	}
	base := func() *ReadRequest {
		return &ReadRequest{
			ManifestCheck: ManifestCheck{PublicKey: f.sk.Public(), AccountID: f.aid, AppID: f.scope.AppID, EnvID: f.scope.EnvID, HighWater: 1},
			Manifest:      unhex(t, v.Manifest.Bytes),
			Signature:     unhex(t, v.Manifest.Signature),
			EnvKey:        func(uint32) (*EnvKey, error) { return EnvKeyFromBytes(f.ek.Bytes()) },
			Names:         []string{"DATABASE_URL", "STRIPE_KEY"},
			Records: map[[envelope.BlindLen]byte][]byte{
				blinds["DATABASE_URL"]: recs["DATABASE_URL"],
				blinds["STRIPE_KEY"]:   recs["STRIPE_KEY"],
			},
		}
	}
	if _, _, err := ReadSecrets(base()); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mod  func(r *ReadRequest)
		want error
	}{
		"missing name": {func(r *ReadRequest) { r.Names = append(r.Names, "MISSING") }, ErrNotInManifest},
		"records swapped": {func(r *ReadRequest) {
			r.Records[blinds["DATABASE_URL"]], r.Records[blinds["STRIPE_KEY"]] = recs["STRIPE_KEY"], recs["DATABASE_URL"]
		}, ErrRecordMismatch},
		"record not fetched": {func(r *ReadRequest) { delete(r.Records, blinds["STRIPE_KEY"]) }, ErrRecordMismatch},
		"record re-sealed (hash differs)": {func(r *ReadRequest) {
			c := vectorCipher(t, f)
			r.Records[blinds["DATABASE_URL"]], _ = c.Seal("DATABASE_URL", 7, []byte("postgres://evil"))
		}, ErrRecordMismatch},
		"manifest version differs from record's": {func(r *ReadRequest) {
			r.Manifest, r.Signature = signedVectorManifest(t, f, func(m *envelope.Manifest) {
				for i := range m.Entries {
					m.Entries[i].Version++
				}
			})
		}, ErrAuth},
		"rollback":        {func(r *ReadRequest) { r.HighWater = 43 }, ErrRollback},
		"wrong EK":        {func(r *ReadRequest) { r.EnvKey = func(uint32) (*EnvKey, error) { return NewEnvKey(), nil } }, ErrEKMismatch},
		"altered entry":   {func(r *ReadRequest) { r.Manifest = flip(r.Manifest, len(r.Manifest)-1, 1) }, ErrBadSignature},
		"wrong env asked": {func(r *ReadRequest) { r.EnvID = bytes.Repeat([]byte{0xc1}, 16) }, ErrWrongEnv},
		"EK lookup fails": {func(r *ReadRequest) {
			r.EnvKey = func(uint32) (*EnvKey, error) { return nil, ErrAuth }
		}, ErrAuth},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := base()
			tc.mod(r)
			got, m, err := ReadSecrets(r)
			if !errors.Is(err, tc.want) || got != nil || m != nil {
				t.Fatalf("ReadSecrets = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	t.Run("list by entry", func(t *testing.T) {
		m, _ := VerifyManifest(unhex(t, v.Manifest.Bytes), unhex(t, v.Manifest.Signature), base().ManifestCheck)
		r, err := NewEnvReader(m, f.ek)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range m.Entries {
			name, _, err := r.OpenEntry(e, recs[v.Secrets[i].Name])
			if err != nil || name != v.Secrets[i].Name {
				t.Fatalf("OpenEntry %d = %q, %v", i, name, err)
			}
		}
		// A valid record, hash and version under another name's blind id.
		e := m.Entries[1]
		e.RecordHash, e.Version = m.Entries[0].RecordHash, m.Entries[0].Version
		if _, _, err := r.OpenEntry(e, recs["DATABASE_URL"]); !errors.Is(err, ErrRecordMismatch) {
			t.Fatalf("record under another blind id: %v", err)
		}
		if _, _, err := r.OpenEntry(m.Entries[1], recs["DATABASE_URL"]); !errors.Is(err, ErrRecordMismatch) {
			t.Fatalf("record with another hash: %v", err)
		}
	})
}

func TestMachineWrapRejected(t *testing.T) {
	f := newFixture(t)
	v := f.v
	w := unhex(t, v.Machine.EnvKeyWrap)
	other := NewMachineKey()
	if _, err := other.UnwrapEnvKey(w, f.scope); !errors.Is(err, ErrAuth) {
		t.Errorf("opened by another machine: %v", err)
	}
	otherEnv := f.scope
	otherEnv.EnvID = bytes.Repeat([]byte{0xc1}, 16)
	if _, err := f.mk.UnwrapEnvKey(w, otherEnv); !errors.Is(err, ErrAuth) {
		t.Errorf("replayed for another env: %v", err)
	}
	otherEpoch := f.scope
	otherEpoch.Epoch = 2
	if _, err := f.mk.UnwrapEnvKey(w, otherEpoch); !errors.Is(err, ErrAuth) {
		t.Errorf("replayed for another epoch: %v", err)
	}
	// Low-order ephemeral keys: all-zero (u=0) and u=1 give an all-zero shared secret.
	for _, eph := range [][]byte{make([]byte, 32), append([]byte{1}, make([]byte, 31)...)} {
		z := append(bytes.Clone(eph), w[32:]...)
		if _, err := f.mk.UnwrapEnvKey(z, f.scope); !errors.Is(err, ErrAuth) {
			t.Errorf("ephemeral %x: %v", eph[:1], err)
		}
	}
	// Wrapping to a low-order machine key is refused, not silently done with a zero secret.
	id := f.mk.ID()
	if _, err := WrapEnvKeyToMachine(f.ek, f.scope, id[:], make([]byte, 32)); !errors.Is(err, ErrAuth) {
		t.Errorf("wrap to all-zero public key: %v", err)
	}
	for _, n := range []int{0, 105, 107} {
		b := make([]byte, n)
		copy(b, w)
		if _, err := f.mk.UnwrapEnvKey(b, f.scope); !errors.Is(err, envelope.ErrBadLength) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	for i := range w {
		if _, err := f.mk.UnwrapEnvKey(flip(w, i, 0x10), f.scope); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
	// Account-wide wrap: env wrap bytes are not an account wrap and vice versa; ak_version is bound.
	aw := unhex(t, v.Machine.AccountWrap)
	if _, err := f.mk.UnwrapAccountKey(aw, f.aid, 2); !errors.Is(err, ErrAuth) {
		t.Errorf("account wrap with another ak_version: %v", err)
	}
	if _, err := f.mk.UnwrapAccountKey(w, f.aid, 1); !errors.Is(err, ErrAuth) {
		t.Errorf("env wrap opened as account wrap: %v", err)
	}
	if _, err := f.mk.UnwrapEnvKey(aw, f.scope); !errors.Is(err, ErrAuth) {
		t.Errorf("account wrap opened as env wrap: %v", err)
	}
	if _, err := other.UnwrapAccountKey(aw, f.aid, 1); !errors.Is(err, ErrAuth) {
		t.Errorf("account wrap opened by another machine: %v", err)
	}
	// Fresh random wraps round-trip and differ each time.
	w1, _ := WrapEnvKeyToMachine(f.ek, f.scope, id[:], f.mk.PublicKey())
	w2, _ := WrapEnvKeyToMachine(f.ek, f.scope, id[:], f.mk.PublicKey())
	if bytes.Equal(w1, w2) || len(w1) != envelope.MachineWrapLen {
		t.Error("wraps are not randomized")
	}
	if ek, err := f.mk.UnwrapEnvKey(w1, f.scope); err != nil || !ek.Equal(&f.ek.Key) {
		t.Errorf("fresh wrap: %v", err)
	}
}

func TestMachineKeyFile(t *testing.T) {
	for _, n := range []int{31, 33, 0, 64, 1} {
		_, err := ParseMachineKeyFile(bytes.Repeat([]byte{7}, n))
		if !errors.Is(err, ErrBadKeyFile) {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if want := " " + strconv.Itoa(n) + " bytes"; !strings.Contains(err.Error(), want) {
			t.Errorf("%d bytes: error %q does not name the size", n, err)
		}
	}
	if _, err := ParseMachineKeyFile(make([]byte, 32)); !errors.Is(err, ErrBadKeyFile) {
		t.Errorf("all-zero file: %v", err)
	}
	mk := NewMachineKey()
	back, err := ParseMachineKeyFile(mk.Bytes())
	if err != nil || !back.Equal(&mk.Key) {
		t.Fatal(err)
	}
	// The token parses back to id and auth, and the verifier matches.
	id, auth, err := envelope.ParseMachineToken(mk.Token())
	if err != nil || id != mk.ID() || !bytes.Equal(auth[:], mk.Auth().Bytes()) {
		t.Fatalf("machine token: %v", err)
	}
	if !envelope.VerifierMatches(envelope.MachineVerifier(&auth), func() []byte { v := mk.Verifier(); return v[:] }()) {
		t.Fatal("machine verifier mismatch")
	}
}

func TestPinRejected(t *testing.T) {
	f := newFixture(t)
	v := f.v
	pub := unhex(t, v.Manifest.SignPub)
	mac := unhex(t, v.Machine.PinMAC)
	if err := f.mk.VerifyPin(f.aid, pub, mac); err != nil {
		t.Fatal(err)
	}
	for i := range mac {
		for bit := range 8 {
			if err := f.mk.VerifyPin(f.aid, pub, flip(mac, i, 1<<bit)); !errors.Is(err, ErrBadPin) {
				t.Fatalf("pin byte %d bit %d flipped: %v", i, bit, err)
			}
		}
	}
	for i := range pub {
		for bit := range 8 {
			if err := f.mk.VerifyPin(f.aid, flip(pub, i, 1<<bit), mac); !errors.Is(err, ErrBadPin) {
				t.Fatalf("signing key byte %d bit %d flipped: %v", i, bit, err)
			}
		}
	}
	if err := NewMachineKey().VerifyPin(f.aid, pub, mac); !errors.Is(err, ErrBadPin) {
		t.Errorf("another machine: %v", err)
	}
	if err := f.mk.VerifyPin(bytes.Repeat([]byte{1}, 16), pub, mac); !errors.Is(err, ErrBadPin) {
		t.Errorf("another account: %v", err)
	}
	if err := f.mk.VerifyPin(f.aid, pub, mac[:31]); !errors.Is(err, ErrBadPin) {
		t.Errorf("short mac: %v", err)
	}
	if err := f.mk.VerifyPin(f.aid, pub[:31], mac); !errors.Is(err, ErrBadPin) {
		t.Errorf("short key: %v", err)
	}
}

func TestGrantChecks(t *testing.T) {
	f := newFixture(t)
	v := f.v
	raw, sig := unhex(t, v.Machine.GrantBytes), unhex(t, v.Machine.GrantSignature)
	pub := f.sk.Public()
	nb := time.Unix(int64(v.Inputs.Grant.NotBefore), 0)
	if _, err := f.mk.VerifyGrant(pub, raw, sig, f.aid, nb.Add(100*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mk.VerifyGrant(pub, raw, sig, f.aid, nb.Add(-time.Second)); !errors.Is(err, ErrGrantNotYetValid) {
		t.Errorf("before not_before: %v", err)
	}
	if _, err := NewMachineKey().VerifyGrant(pub, raw, sig, f.aid, nb); !errors.Is(err, ErrGrantMismatch) {
		t.Errorf("grant of another machine: %v", err)
	}
	// Validly signed grants that differ from this machine in one field only.
	for name, mut := range map[string]func(g *envelope.Grant){
		"machine id only": func(g *envelope.Grant) { g.MachineID = bytes.Repeat([]byte{1}, 16) },
		"public key only": func(g *envelope.Grant) { g.MachinePub = NewMachineKey().PublicKey() },
	} {
		g, _ := envelope.ParseGrant(raw)
		mut(g)
		r, s, err := f.sk.SignGrant(g)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.mk.VerifyGrant(pub, r, s, f.aid, nb); !errors.Is(err, ErrGrantMismatch) {
			t.Errorf("grant differing in %s: %v", name, err)
		}
	}
	if _, err := f.mk.VerifyGrant(pub, raw, sig, bytes.Repeat([]byte{1}, 16), nb); !errors.Is(err, ErrGrantMismatch) {
		t.Errorf("grant of another account: %v", err)
	}
	if _, err := f.mk.VerifyGrant(pub, flip(raw, len(raw)-1, 1), sig, f.aid, nb); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered seq_min: %v", err)
	}
	if _, err := f.mk.VerifyGrant(NewSigningKey().Public(), raw, sig, f.aid, nb); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another signer: %v", err)
	}
	// A manifest signature is not a grant signature (distinct labels).
	if _, err := VerifyGrant(pub, unhex(t, v.Manifest.Bytes), unhex(t, v.Manifest.Signature), nb); err == nil {
		t.Error("manifest accepted as grant")
	}

	g, _ := envelope.ParseGrant(raw)
	g.NotAfter = g.NotBefore + 3600
	r2, s2, err := f.sk.SignGrant(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.mk.VerifyGrant(pub, r2, s2, f.aid, nb.Add(3599*time.Second)); err != nil {
		t.Errorf("inside window: %v", err)
	}
	if _, err := f.mk.VerifyGrant(pub, r2, s2, f.aid, nb.Add(3600*time.Second)); !errors.Is(err, ErrGrantExpired) {
		t.Errorf("at not_after: %v", err)
	}

	vg, _ := VerifyGrant(pub, raw, sig, nb)
	if _, err := LookupScope(vg, "myapp", "staging"); !errors.Is(err, ErrNotGranted) {
		t.Errorf("ungranted env: %v", err)
	}
	if _, err := LookupScope(vg, "production", "myapp"); !errors.Is(err, ErrNotGranted) {
		t.Errorf("swapped names: %v", err)
	}
	if _, _, err := f.sk.SignGrant(&envelope.Grant{AccountID: f.aid}); !errors.Is(err, envelope.ErrMalformed) {
		t.Errorf("invalid grant signed: %v", err)
	}
}

func TestSigningKeyWrap(t *testing.T) {
	f := newFixture(t)
	w, err := f.ak.WrapSigningKey(f.sk, f.aid, 1)
	if err != nil || len(w) != envelope.WrappedKeyLen {
		t.Fatalf("wrap: %d bytes, %v", len(w), err)
	}
	sk, err := f.ak.UnwrapSigningKey(w, f.aid, 1)
	if err != nil || !bytes.Equal(sk.Public(), f.sk.Public()) {
		t.Fatalf("unwrap: %v", err)
	}
	// The documented AAD, byte for byte.
	wantAAD := "0101" + "0016" + hex.EncodeToString([]byte("ov/v1/wrap/signing-key")) + "0010" + f.v.Inputs.AccountID + "00000001"
	eqHex(t, "signing key wrap AAD", signingKeyAAD(f.aid, 1), wantAAD)
	for name, fn := range map[string]func() (*SigningKey, error){
		"ak_version": func() (*SigningKey, error) { return f.ak.UnwrapSigningKey(w, f.aid, 2) },
		"account":    func() (*SigningKey, error) { return f.ak.UnwrapSigningKey(w, bytes.Repeat([]byte{1}, 16), 1) },
		"other AK":   func() (*SigningKey, error) { return NewAccountKey().UnwrapSigningKey(w, f.aid, 1) },
		"as EK wrap": func() (*SigningKey, error) {
			_, err := f.ak.UnwrapEnvKey(w, f.scope)
			return nil, err
		},
	} {
		if _, err := fn(); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An EK wrap is not a signing-key wrap.
	if _, err := f.ak.UnwrapSigningKey(unhex(t, f.v.EnvKey.Wrapped), f.aid, 1); !errors.Is(err, ErrAuth) {
		t.Errorf("EK wrap as signing key: %v", err)
	}
	if _, err := f.ak.WrapSigningKey(f.sk, f.aid[:15], 1); !errors.Is(err, envelope.ErrMalformed) {
		t.Errorf("short account id: %v", err)
	}
}

func TestNoSecretsInErrors(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	v := f.v
	secrets := []string{v.Inputs.Password, v.Inputs.Secret1.Value, v.Inputs.AccountKey, v.Inputs.EnvKey, v.Inputs.MachineKey, v.Inputs.AccountSecretKey, v.KDF.KEK}
	var errs []error
	pk, _ := DerivePasswordKeys([]byte("wrong "+v.Inputs.Password), f.ask, f.aid, f.params)
	_, err := pk.UnwrapAccountKey(unhex(t, v.KDF.KeyCheck), unhex(t, v.AccountKeyWrap.Wrapped), 1)
	errs = append(errs, err)
	c := vectorCipher(t, f)
	_, err = c.Open("DATABASE_URL", 8, unhex(t, v.Secrets[0].Record))
	errs = append(errs, err)
	_, err = ParseMachineKeyFile(unhex(t, v.Inputs.MachineKey)[:31])
	errs = append(errs, err)
	_, _, err = envelope.ParseAPIToken([]byte(v.APIKey.Token + "x"))
	errs = append(errs, err)
	for _, e := range errs {
		if e == nil {
			t.Fatal("expected an error")
		}
		msg := strings.ToLower(e.Error())
		for _, s := range secrets {
			if strings.Contains(msg, strings.ToLower(s)) || strings.Contains(msg, strings.ToLower(s[:16])) {
				t.Errorf("error %q contains secret material", e)
			}
		}
		if strings.Contains(msg, "ovd_") || strings.Contains(msg, v.APIKey.Token[4:20]) {
			t.Errorf("error %q contains the token", e)
		}
	}
}

func flip(b []byte, i int, mask byte) []byte {
	c := bytes.Clone(b)
	c[i] ^= mask
	return c
}

func setByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

// TestCachedChecksSkipOnlyTheSignature: a copy read back from the MAC'd offline cache (Cached)
// is not verified against its signature again, but every other check still applies: the env and
// account it is for, the rollback floor, the grant's validity window and machine.
func TestCachedChecksSkipOnlyTheSignature(t *testing.T) {
	f := newFixture(t)
	v := f.v
	raw, sig := unhex(t, v.Manifest.Bytes), unhex(t, v.Manifest.Signature)
	bad := flip(sig, 0, 0x80)
	check := ManifestCheck{PublicKey: f.sk.Public(), AccountID: f.aid, AppID: f.scope.AppID, EnvID: f.scope.EnvID, HighWater: 42}
	if _, err := VerifyManifest(raw, bad, check); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("fresh, bad signature: %v", err)
	}
	cached := check
	cached.Cached = true
	if _, err := VerifyManifest(raw, bad, cached); err != nil {
		t.Fatalf("cached, signature not checked: %v", err)
	}
	c := cached
	c.HighWater = 43
	if _, err := VerifyManifest(raw, sig, c); !errors.Is(err, ErrRollback) {
		t.Errorf("cached below the floor: %v", err)
	}
	c = cached
	c.EnvID = bytes.Repeat([]byte{0xc1}, 16)
	if _, err := VerifyManifest(raw, sig, c); !errors.Is(err, ErrWrongEnv) {
		t.Errorf("cached, another env: %v", err)
	}

	graw, gsig := unhex(t, v.Machine.GrantBytes), unhex(t, v.Machine.GrantSignature)
	pub := f.sk.Public()
	nb := time.Unix(int64(v.Inputs.Grant.NotBefore), 0)
	if _, err := f.mk.VerifyGrant(pub, graw, flip(gsig, 3, 1), f.aid, nb); !errors.Is(err, ErrBadSignature) {
		t.Errorf("fresh grant, bad signature: %v", err)
	}
	if _, err := f.mk.VerifyCachedGrant(pub, graw, flip(gsig, 3, 1), f.aid, nb); err != nil {
		t.Errorf("cached grant, signature not checked: %v", err)
	}
	if _, err := f.mk.VerifyCachedGrant(pub, graw, gsig, f.aid, nb.Add(-time.Second)); !errors.Is(err, ErrGrantNotYetValid) {
		t.Errorf("cached grant before not_before: %v", err)
	}
	if _, err := NewMachineKey().VerifyCachedGrant(pub, graw, gsig, f.aid, nb); !errors.Is(err, ErrGrantMismatch) {
		t.Errorf("cached grant of another machine: %v", err)
	}
	if _, err := f.mk.VerifyCachedGrant(pub, graw, gsig, bytes.Repeat([]byte{7}, 16), nb); !errors.Is(err, ErrGrantMismatch) {
		t.Errorf("cached grant of another account: %v", err)
	}
}
