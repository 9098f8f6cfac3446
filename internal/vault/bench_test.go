// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"fmt"
	"testing"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// Benchmarks run only with -bench; plain `go test` never runs them (the
// Argon2id one allocates 256 MiB and takes seconds per operation).

func BenchmarkSealSecret(b *testing.B) {
	c := vectorCipher(b, newFixture(b))
	value := make([]byte, 64)
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := c.Seal("DATABASE_URL", 7, value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenSecret(b *testing.B) {
	c := vectorCipher(b, newFixture(b))
	value := make([]byte, 64)
	rec, _ := c.Seal("DATABASE_URL", 7, value)
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := c.Open("DATABASE_URL", 7, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func manifest50(b *testing.B, f *fixture) *envelope.Manifest {
	c := vectorCipher(b, f)
	var entries []envelope.ManifestEntry
	for i := range 50 {
		name := fmt.Sprintf("SECRET_%02d", i)
		rec, err := c.Seal(name, 1, []byte("value"))
		if err != nil {
			b.Fatal(err)
		}
		e, err := c.Entry(name, 1, rec)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, e)
	}
	return c.Manifest(100, 1767225600, entries)
}

func BenchmarkSignManifest50(b *testing.B) {
	f := newFixture(b)
	m := manifest50(b, f)
	for b.Loop() {
		if _, _, err := f.sk.SignManifest(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyManifest50(b *testing.B) {
	f := newFixture(b)
	raw, sig, err := f.sk.SignManifest(manifest50(b, f))
	if err != nil {
		b.Fatal(err)
	}
	check := ManifestCheck{PublicKey: f.sk.Public(), AccountID: f.aid, AppID: f.scope.AppID, EnvID: f.scope.EnvID, HighWater: 100}
	for b.Loop() {
		if _, err := VerifyManifest(raw, sig, check); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapMachineEnvKey(b *testing.B) {
	f := newFixture(b)
	w := unhex(b, f.v.Machine.EnvKeyWrap)
	for b.Loop() {
		if _, err := f.mk.UnwrapEnvKey(w, f.scope); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2idProduction measures the unlock cost at the production
// defaults (t=3, m=256 MiB, p=4), through the same path as DerivePasswordKeys.
func BenchmarkArgon2idProduction(b *testing.B) {
	p := NewKDFParams()
	if err := p.validate(false); err != nil {
		b.Fatal(err)
	}
	ask := NewAccountSecretKey()
	aid := make([]byte, 16)
	pw := []byte("correct horse battery staple")
	for b.Loop() {
		pk, err := DerivePasswordKeys(pw, ask, aid, p)
		if err != nil {
			b.Fatal(err)
		}
		pk.Wipe()
	}
}
