// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// Fuzz targets for every decoder that handles untrusted bytes. Seeds come
// from the known-answer vectors and run in plain `go test`. The AEAD targets
// check the property that matters: only the genuine blob ever opens, and it
// opens to the genuine key or value.

func FuzzOpenRecord(f *testing.F) {
	fx := newFixture(f)
	c := vectorCipher(f, fx)
	type genuine struct {
		rec     []byte
		version uint64
		value   string
	}
	want := map[string]genuine{}
	for i, in := range []vecSecretIn{fx.v.Inputs.Secret1, fx.v.Inputs.Secret2} {
		rec := unhex(f, fx.v.Secrets[i].Record)
		want[in.Name] = genuine{rec, in.Version, in.Value}
		f.Add(rec, in.Name, in.Version)
		f.Add(rec[:len(rec)-1], in.Name, in.Version)
	}
	f.Fuzz(func(t *testing.T, rec []byte, name string, version uint64) {
		if v, err := c.Open(name, version, rec); err == nil {
			n, _ := envelope.NormalizeName(name)
			g := want[n]
			if !bytes.Equal(rec, g.rec) || version != g.version || string(v) != g.value {
				t.Fatalf("a non-genuine record opened: %x", rec)
			}
		}
		if n, v, err := c.OpenUnnamed(version, rec); err == nil {
			g := want[n]
			if !bytes.Equal(rec, g.rec) || version != g.version || string(v) != g.value {
				t.Fatalf("a non-genuine record opened unnamed: %x", rec)
			}
		}
	})
}

func FuzzSealOpen(f *testing.F) {
	fx := newFixture(f)
	c := vectorCipher(f, fx)
	f.Add("DATABASE_URL", uint64(7), []byte("postgres://app:s3cr3t@db.internal:5432/app"))
	f.Add("cafe\u0301", uint64(0), []byte{})
	f.Fuzz(func(t *testing.T, name string, version uint64, value []byte) {
		rec, err := c.Seal(name, version, value)
		if err != nil {
			return
		}
		got, err := c.Open(name, version, rec)
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("round trip: %v", err)
		}
		n, _ := envelope.NormalizeName(name)
		gn, got, err := c.OpenUnnamed(version, rec)
		if err != nil || gn != n || !bytes.Equal(got, value) {
			t.Fatalf("unnamed round trip: %q %v", gn, err)
		}
	})
}

func FuzzUnwrapAccountKey(f *testing.F) {
	fx := newFixture(f)
	kek := keyFrom(unhex(f, fx.v.KDF.KEK))
	w := unhex(f, fx.v.AccountKeyWrap.Wrapped)
	f.Add(w, uint32(1))
	f.Add(w[:73], uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, ver uint32) {
		ak, err := unwrapAccountKey(&kek, b, fx.aid, ver, fx.params)
		if err == nil && (!bytes.Equal(b, w) || ver != 1 || !ak.Equal(&fx.ak.Key)) {
			t.Fatalf("a non-genuine AK wrap opened: %x", b)
		}
	})
}

func FuzzUnwrapEnvKey(f *testing.F) {
	fx := newFixture(f)
	w := unhex(f, fx.v.EnvKey.Wrapped)
	f.Add(w, "production")
	f.Add(w, "staging")
	f.Fuzz(func(t *testing.T, b []byte, envName string) {
		s := fx.scope
		s.EnvName = envName
		ek, err := fx.ak.UnwrapEnvKey(b, s)
		if err == nil && (!bytes.Equal(b, w) || envName != "production" || !ek.Equal(&fx.ek.Key)) {
			t.Fatalf("a non-genuine EK wrap opened: %x %q", b, envName)
		}
		if sk, err := fx.ak.UnwrapSigningKey(b, fx.aid, 1); err == nil {
			t.Fatalf("a fuzzed blob opened as a signing-key wrap: %v", sk)
		}
	})
}

func FuzzUnwrapMachineWrap(f *testing.F) {
	fx := newFixture(f)
	ew := unhex(f, fx.v.Machine.EnvKeyWrap)
	aw := unhex(f, fx.v.Machine.AccountWrap)
	f.Add(ew)
	f.Add(aw)
	f.Add(append(make([]byte, 32), ew[32:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ek, err := fx.mk.UnwrapEnvKey(b, fx.scope); err == nil && (!bytes.Equal(b, ew) || !ek.Equal(&fx.ek.Key)) {
			t.Fatalf("a non-genuine machine EK wrap opened: %x", b)
		}
		if ak, err := fx.mk.UnwrapAccountKey(b, fx.aid, 1); err == nil && (!bytes.Equal(b, aw) || !ak.Equal(&fx.ak.Key)) {
			t.Fatalf("a non-genuine machine AK wrap opened: %x", b)
		}
	})
}

func FuzzParseMachineKeyFile(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.mk.Bytes())
	f.Add(fx.mk.Bytes()[:31])
	f.Add(append(bytes.Clone(fx.mk.Bytes()), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		mk, err := ParseMachineKeyFile(b)
		ok := len(b) == 32 && !bytes.Equal(b, make([]byte, 32))
		if (err == nil) != ok {
			t.Fatalf("ParseMachineKeyFile(%d bytes) = %v", len(b), err)
		}
		if err == nil && !bytes.Equal(mk.Bytes(), b) {
			t.Fatal("key file did not round-trip")
		}
	})
}

func FuzzParseKDFParams(f *testing.F) {
	fx := newFixture(f)
	f.Add(unhex(f, fx.v.KDF.ParamsEncoding))
	f.Add(NewKDFParams().Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseKDFParams(b)
		if err != nil {
			return
		}
		if p.Validate() != nil || !bytes.Equal(p.Encode(), b) {
			t.Fatalf("parse→encode changed %x", b)
		}
	})
}

func FuzzVerifyManifest(f *testing.F) {
	fx := newFixture(f)
	raw, sig := unhex(f, fx.v.Manifest.Bytes), unhex(f, fx.v.Manifest.Signature)
	f.Add(raw, sig)
	check := ManifestCheck{PublicKey: fx.sk.Public(), AccountID: fx.aid, AppID: fx.scope.AppID, EnvID: fx.scope.EnvID}
	f.Fuzz(func(t *testing.T, r, s []byte) {
		if _, err := VerifyManifest(r, s, check); err == nil && !bytes.Equal(r, raw) {
			t.Fatalf("a forged manifest verified: %x", r)
		}
	})
}

func FuzzVerifyGrant(f *testing.F) {
	fx := newFixture(f)
	raw, sig := unhex(f, fx.v.Machine.GrantBytes), unhex(f, fx.v.Machine.GrantSignature)
	f.Add(raw, sig)
	now := time.Unix(int64(fx.v.Inputs.Grant.NotBefore), 0)
	f.Fuzz(func(t *testing.T, r, s []byte) {
		if _, err := fx.mk.VerifyGrant(fx.sk.Public(), r, s, fx.aid, now); err == nil && !bytes.Equal(r, raw) {
			t.Fatalf("a forged grant verified: %x", r)
		}
	})
}

func FuzzVerifyPin(f *testing.F) {
	fx := newFixture(f)
	pub, mac := unhex(f, fx.v.Manifest.SignPub), unhex(f, fx.v.Machine.PinMAC)
	f.Add(pub, mac)
	f.Fuzz(func(t *testing.T, p, m []byte) {
		if err := fx.mk.VerifyPin(fx.aid, p, m); err == nil && (!bytes.Equal(p, pub) || !bytes.Equal(m, mac)) {
			t.Fatalf("a forged pin verified: %x %x", p, m)
		}
	})
}
