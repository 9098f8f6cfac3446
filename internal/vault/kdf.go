// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// Argon2id parameters (crypto.md §1.1, D2).
const (
	DefaultKDFTime      = 3         // t, passes
	DefaultKDFMemoryKiB = 256 << 10 // m = 256 MiB
	DefaultKDFThreads   = 4         // p, lanes
	KDFSaltLen          = 16

	MinKDFTime      = 1
	MaxKDFTime      = 10
	MinKDFMemoryKiB = 64 << 10 // 64 MiB
	MaxKDFMemoryKiB = 4 << 20  // 4 GiB
	MinKDFWorkKiB   = 3 * MinKDFMemoryKiB
	MinKDFThreads   = 1
	MaxKDFThreads   = 16
)

// kdfEncodingTag and argon2Version open KDFParams.Encode: 0x01 0x13.
const (
	kdfEncodingTag = 0x01
	argon2Version  = 0x13
)

// KDFParams are the Argon2id parameters of one account password (crypto.md
// §1.1). They may arrive from the server, so every use checks
// [KDFParams.Validate] first: the floor stops a downgrade, the ceiling stops
// memory exhaustion.
type KDFParams struct {
	Time      uint32 // t: passes, 1..10
	MemoryKiB uint32 // m: KiB, 64 MiB..4 GiB, and t·m ≥ 3·64 MiB
	Threads   uint8  // p: lanes, 1..16
	Salt      []byte // 16 bytes, fresh on every password change
}

// NewKDFParams returns the production defaults (t=3, m=256 MiB, p=4) with a
// fresh random 16-byte salt.
func NewKDFParams() KDFParams {
	salt := make([]byte, KDFSaltLen)
	randRead(salt)
	return KDFParams{Time: DefaultKDFTime, MemoryKiB: DefaultKDFMemoryKiB, Threads: DefaultKDFThreads, Salt: salt}
}

// Validate enforces 1 ≤ t ≤ 10, 64 MiB ≤ m ≤ 4 GiB, t·m ≥ 3·64 MiB,
// 1 ≤ p ≤ 16 and a 16-byte salt. In a test binary that called [UseTestKDF]
// the floors drop to what Argon2id itself needs (t ≥ 1, m ≥ 8·p KiB); the
// ceilings never change. Errors wrap [ErrKDFParams].
func (p KDFParams) Validate() error {
	return p.validate(testKDF.Load())
}

func (p KDFParams) validate(allowInsecure bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("vault: check kdf params: "+format+": %w", append(args, ErrKDFParams)...)
	}
	switch {
	case len(p.Salt) != KDFSaltLen:
		return bad("salt is %d bytes, want %d", len(p.Salt), KDFSaltLen)
	case p.Time > MaxKDFTime:
		return bad("t=%d above %d", p.Time, MaxKDFTime)
	case p.MemoryKiB > MaxKDFMemoryKiB:
		return bad("m=%d KiB above %d KiB", p.MemoryKiB, MaxKDFMemoryKiB)
	case p.Threads > MaxKDFThreads:
		return bad("p=%d above %d", p.Threads, MaxKDFThreads)
	case p.Time < MinKDFTime:
		return bad("t=%d below %d", p.Time, MinKDFTime)
	case p.Threads < MinKDFThreads:
		return bad("p=%d below %d", p.Threads, MinKDFThreads)
	}
	if allowInsecure {
		if p.MemoryKiB < 8*uint32(p.Threads) {
			return bad("m=%d KiB below Argon2's minimum of 8·p", p.MemoryKiB)
		}
		return nil
	}
	switch {
	case p.MemoryKiB < MinKDFMemoryKiB:
		return bad("m=%d KiB below %d KiB", p.MemoryKiB, MinKDFMemoryKiB)
	case uint64(p.Time)*uint64(p.MemoryKiB) < MinKDFWorkKiB:
		return bad("t·m=%d KiB below %d KiB (RFC 9106 second option)", uint64(p.Time)*uint64(p.MemoryKiB), MinKDFWorkKiB)
	}
	return nil
}

// Encode returns 0x01 ‖ 0x13 ‖ u32(t) ‖ u32(m) ‖ u8(p) ‖ lp(salt), the form
// bound into the AAD of the wrapped account key and stored in the config.
func (p KDFParams) Encode() []byte {
	b := make([]byte, 0, 2+4+4+1+2+len(p.Salt))
	b = append(b, kdfEncodingTag, argon2Version)
	b = envelope.AppendU32(b, p.Time)
	b = envelope.AppendU32(b, p.MemoryKiB)
	b = append(b, p.Threads)
	return envelope.AppendLP(b, p.Salt)
}

// ParseKDFParams decodes [KDFParams.Encode] strictly and validates the
// result. Errors wrap [ErrKDFParams] or envelope's ErrTruncated,
// ErrMalformed, ErrTrailingData.
func ParseKDFParams(b []byte) (KDFParams, error) {
	r := envelope.NewReader(b)
	tag := r.U8("tag")
	ver := r.U8("argon2 version")
	p := KDFParams{Time: r.U32("t"), MemoryKiB: r.U32("m"), Threads: r.U8("p"), Salt: bytes.Clone(r.LP("salt"))}
	if err := r.Finish(); err != nil {
		return KDFParams{}, fmt.Errorf("vault: parse kdf params: %w", err)
	}
	if tag != kdfEncodingTag || ver != argon2Version {
		return KDFParams{}, fmt.Errorf("vault: parse kdf params: tag %#02x version %#02x, want 0x01 0x13: %w", tag, ver, ErrKDFParams)
	}
	if err := p.Validate(); err != nil {
		return KDFParams{}, err
	}
	return p, nil
}

var testKDF atomic.Bool

// UseTestKDF lets this process accept Argon2id parameters below the
// production floor (for instance the known-answer vectors' m=64 KiB), so that
// tests and end-to-end scripts run fast. It panics unless the program is a
// test binary (testing.Testing), so no configuration, flag or environment
// variable can switch production code to weak parameters. It cannot be undone.
func UseTestKDF() {
	if !testing.Testing() {
		panic("vault: UseTestKDF called outside a test binary")
	}
	testKDF.Store(true)
}
