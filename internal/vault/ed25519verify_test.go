// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// ed25519Verify answers as crypto/ed25519.Verify on valid signatures and on every kind of bad one:
// a flipped bit anywhere in the signature, key or message, S not reduced (S+L), high bits of S set,
// small-order and non-canonical keys and R values, wrong lengths.
func TestEd25519VerifyMatchesStdlib(t *testing.T) {
	check := func(name string, pub, msg, sig []byte) {
		t.Helper()
		want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
		if got := ed25519Verify(pub, msg, sig); got != want {
			t.Fatalf("%s: got %v, crypto/ed25519 says %v (pub %x sig %x msg %x)", name, got, want, pub, sig, msg)
		}
	}
	valid := 0
	for i := 0; i < 64; i++ {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, i*7)
		_, _ = rand.Read(msg)
		sig := ed25519.Sign(priv, msg)
		check("valid", pub, msg, sig)
		if ed25519Verify(pub, msg, sig) {
			valid++
		}
		for bit := 0; bit < 512; bit += 1 + i%7 {
			s := append([]byte(nil), sig...)
			s[bit/8] ^= 1 << (bit % 8)
			check("signature bit flipped", pub, msg, s)
		}
		for bit := 0; bit < 256; bit += 3 + i%5 {
			p := append([]byte(nil), pub...)
			p[bit/8] ^= 1 << (bit % 8)
			check("key bit flipped", p, msg, sig)
		}
		if len(msg) > 0 {
			m := append([]byte(nil), msg...)
			m[i%len(m)] ^= 0x80
			check("message altered", pub, m, sig)
		}
		// S + L: the same scalar, not reduced; RFC 8032 and crypto/ed25519 refuse it.
		s := append([]byte(nil), sig...)
		addL(s[32:])
		check("S+L", pub, msg, s)
		check("short signature", pub, msg, sig[:63])
		check("long signature", pub, msg, append(append([]byte(nil), sig...), 0))
		check("short key", pub[:31], msg, sig)
	}
	if valid != 64 {
		t.Fatalf("%d of 64 valid signatures verified", valid)
	}
	// Small-order and non-canonical encodings as keys and as R (from the usual test vectors).
	odd := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"0100000000000000000000000000000000000000000000000000000000000080",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	}
	msg := []byte("ov")
	for _, a := range odd {
		pub, _ := hex.DecodeString(a)
		for _, r := range odd {
			rb, _ := hex.DecodeString(r)
			sig := append(append([]byte(nil), rb...), make([]byte, 32)...)
			check("odd key and R, S=0", pub, msg, sig)
			sig[32] = 1
			check("odd key and R, S=1", pub, msg, sig)
		}
	}
}

// addL adds the group order L to the little-endian 32-byte s.
func addL(s []byte) {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 31: 0x10}
	var c uint16
	for i := range s {
		c += uint16(s[i]) + uint16(l[i])
		s[i] = byte(c)
		c >>= 8
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("a manifest of some hundred bytes")
	sig := ed25519.Sign(priv, msg)
	b.Run("stdlib", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("multiscalar", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ed25519Verify(pub, msg, sig)
		}
	})
}
