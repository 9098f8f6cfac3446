// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/names"
)

// Format constants of crypto.md §0 and §1.5.
const (
	// Version is the first byte of every header: format v1.
	Version = 0x01
	// SuiteXChaCha20Poly1305 is the v1 AEAD suite.
	SuiteXChaCha20Poly1305 = 0x01
	// SuiteAES256GCM is reserved for FIPS-only builds; v1 does not implement it
	// and every check here refuses it.
	SuiteAES256GCM = 0x02

	HeaderLen = 2  // hdr = Version ‖ suite
	NonceLen  = 24 // XChaCha20-Poly1305 nonce
	TagLen    = 16 // Poly1305 tag
	KeyLen    = 32 // every symmetric key, seed and X25519 key
	IDLen     = 16 // account, app, env, machine ids
	BlindLen  = 16 // blind id of a secret name
	EKIDLen   = 16 // ek_id commitment
	HashLen   = 32 // SHA-256 of a record

	// WrappedKeyLen is hdr ‖ nonce ‖ Seal(32-byte key) ‖ tag.
	WrappedKeyLen = HeaderLen + NonceLen + KeyLen + TagLen // 74
	// MachineWrapLen is eph_pub ‖ wrapped key.
	MachineWrapLen = KeyLen + WrappedKeyLen // 106

	// MaxNameLen bounds app, env and secret names (bytes, after NFC).
	MaxNameLen = names.MaxEncoded
	// MaxValueLen bounds one secret value. It keeps a record well inside the
	// agent's 1 MiB frame (crypto.md §4.4).
	MaxValueLen = 512 << 10

	// MinRecordLen is the shortest record: its plaintext is at least
	// lp(name) with a one-byte name and an empty value.
	MinRecordLen = HeaderLen + NonceLen + 2 + 1 + TagLen
	// MaxRecordLen is the longest record: longest name and value.
	MaxRecordLen = HeaderLen + NonceLen + 2 + MaxNameLen + MaxValueLen + TagLen
)

var (
	// ErrBadLength means a blob does not have the length its format requires.
	ErrBadLength = errors.New("wrong length")
	// ErrBadHeader means a blob's header is not 0x01 0x01 (format v1,
	// XChaCha20-Poly1305).
	ErrBadHeader = errors.New("unsupported format version or suite")
)

// Header returns the v1 header hdr = 0x01 ‖ 0x01.
func Header() [HeaderLen]byte { return [HeaderLen]byte{Version, SuiteXChaCha20Poly1305} }

func checkHeader(what string, b []byte) error {
	if b[0] != Version || b[1] != SuiteXChaCha20Poly1305 {
		return fmt.Errorf("envelope: check %s: header %#02x %#02x: %w", what, b[0], b[1], ErrBadHeader)
	}
	return nil
}

// CheckWrappedKey checks that b is a v1 wrapped 32-byte key: exactly
// [WrappedKeyLen] bytes starting with hdr. Callers check this before any
// decryption (crypto.md §0). Errors wrap [ErrBadLength] or [ErrBadHeader].
func CheckWrappedKey(b []byte) error {
	if len(b) != WrappedKeyLen {
		return fmt.Errorf("envelope: check wrapped key: %d bytes, want %d: %w", len(b), WrappedKeyLen, ErrBadLength)
	}
	return checkHeader("wrapped key", b)
}

// CheckRecord checks that b can be a v1 secret record: hdr, and a length
// between [MinRecordLen] and [MaxRecordLen]. Errors wrap [ErrBadLength] or
// [ErrBadHeader].
func CheckRecord(b []byte) error {
	if len(b) < MinRecordLen || len(b) > MaxRecordLen {
		return fmt.Errorf("envelope: check record: %d bytes, want %d to %d: %w", len(b), MinRecordLen, MaxRecordLen, ErrBadLength)
	}
	return checkHeader("record", b)
}

// CheckMachineWrap checks that b is a key wrapped to a machine: exactly
// [MachineWrapLen] bytes, eph_pub[32] then a wrapped key with hdr. Errors wrap
// [ErrBadLength] or [ErrBadHeader].
func CheckMachineWrap(b []byte) error {
	if len(b) != MachineWrapLen {
		return fmt.Errorf("envelope: check machine wrap: %d bytes, want %d: %w", len(b), MachineWrapLen, ErrBadLength)
	}
	return checkHeader("machine wrap", b[KeyLen:])
}

// RecordHash returns SHA-256(record), the form a manifest entry commits to.
func RecordHash(record []byte) [HashLen]byte { return sha256.Sum256(record) }
