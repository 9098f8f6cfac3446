// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// Labels of crypto.md §0 (each used for exactly one purpose). The verifier,
// manifest and grant labels live in internal/envelope.
const (
	label2SKDSalt           = "OpaqueVault v1 2SKD" // HKDF-Extract salt, not lp-encoded
	labelKEK                = "ov/v1/kek"
	labelKeyCheck           = "ov/v1/key-check"
	labelLoginAuth          = "ov/v1/login-auth"
	labelWrapAccountKey     = "ov/v1/wrap/account-key"
	labelWrapSigningKey     = "ov/v1/wrap/signing-key"
	labelWrapEnvKey         = "ov/v1/wrap/env-key"
	labelWrapMachineEnvKey  = "ov/v1/wrap/machine-env-key"
	labelWrapMachineAcctKey = "ov/v1/wrap/machine-account-key"
	labelEKID               = "ov/v1/ek-id"
	labelSecretEnc          = "ov/v1/secret-enc"
	labelNameBlind          = "ov/v1/name-blind"
	labelSecret             = "ov/v1/secret"
	labelMachineID          = "ov/v1/machine-id"
	labelMachineAuth        = "ov/v1/machine-auth"
	labelMachineX25519      = "ov/v1/machine-x25519"
	labelMachinePin         = "ov/v1/machine-pin"
	labelMachineCache       = "ov/v1/machine-cache"
)

// Sizes, from internal/envelope.
const (
	hdrLen             = envelope.HeaderLen
	nonceLen           = envelope.NonceLen
	idLen              = envelope.IDLen
	machineWrapLen     = envelope.MachineWrapLen
	ekIDLen            = envelope.EKIDLen
	blindLen           = envelope.BlindLen
	maxValueLen        = envelope.MaxValueLen
	x25519PublicKeyLen = envelope.KeyLen
)

// info returns lp(label) ‖ ctx, the HKDF info of crypto.md §0.
func info(label string, ctx []byte) []byte {
	b := make([]byte, 0, 2+len(label)+len(ctx))
	b = envelope.AppendLPString(b, label)
	return append(b, ctx...)
}

// derive is derive(K, label, ctx) = HKDF-SHA256(IKM=K, salt=∅, info=lp(label) ‖ ctx, L=32).
func derive(k *Key, label string, ctx []byte) Key {
	out, err := hkdf.Key(sha256.New, k.arr()[:], nil, string(info(label, ctx)), KeyLen)
	if err != nil {
		panic("vault: hkdf: " + err.Error()) // only for invalid lengths
	}
	defer clear(out)
	return keyFrom(out)
}

// expand is HKDF-Expand(PRK, lp(label) ‖ ctx, 32).
func expand(prk *Key, label string, ctx []byte) Key {
	out, err := hkdf.Expand(sha256.New, prk.arr()[:], string(info(label, ctx)), KeyLen)
	if err != nil {
		panic("vault: hkdf: " + err.Error())
	}
	defer clear(out)
	return keyFrom(out)
}

// lpAID returns lp(aid), the context of the 2SKD outputs.
func lpAID(aid []byte) []byte { return envelope.AppendLP(nil, aid) }

// aadPrefix starts every AAD: hdr ‖ lp(label).
func aadPrefix(label string, extra int) []byte {
	hdr := envelope.Header()
	b := make([]byte, 0, hdrLen+2+len(label)+extra)
	b = append(b, hdr[:]...)
	return envelope.AppendLPString(b, label)
}

// sealKey is the wrapped-key blob of crypto.md §0:
// hdr ‖ nonce ‖ XChaCha20-Poly1305(wk, nonce, key, aad). aad must start with hdr.
func sealKey(wk *Key, nonce []byte, key *Key, aad []byte) []byte {
	aead, err := chacha20poly1305.NewX(wk.arr()[:])
	if err != nil {
		panic("vault: xchacha20poly1305: " + err.Error()) // FIPS 140-only mode refuses suite 0x01
	}
	hdr := envelope.Header()
	out := make([]byte, 0, envelope.WrappedKeyLen)
	out = append(out, hdr[:]...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, key.arr()[:], aad)
}

// openKey checks the exact length and header of blob, then opens it. Errors
// wrap envelope.ErrBadLength, envelope.ErrBadHeader or ErrAuth.
func openKey(wk *Key, blob, aad []byte) (Key, error) {
	if err := envelope.CheckWrappedKey(blob); err != nil {
		return Key{}, err
	}
	aead, err := chacha20poly1305.NewX(wk.arr()[:])
	if err != nil {
		panic("vault: xchacha20poly1305: " + err.Error())
	}
	var buf [KeyLen]byte
	defer clear(buf[:])
	pt, err := aead.Open(buf[:0], blob[hdrLen:hdrLen+nonceLen], blob[hdrLen+nonceLen:], aad)
	if err != nil || len(pt) != KeyLen {
		return Key{}, ErrAuth
	}
	return keyFrom(pt), nil
}

func newNonce() []byte {
	n := make([]byte, nonceLen)
	randRead(n)
	return n
}

func checkID(what string, id []byte) error {
	if len(id) != idLen {
		return fmt.Errorf("%s is %d bytes, want %d: %w", what, len(id), idLen, envelope.ErrMalformed)
	}
	return nil
}
