// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxLP is the longest byte string lp can encode (its length is a u16).
const MaxLP = 0xffff

var (
	// ErrTruncated means the input ended before a field was complete.
	ErrTruncated = errors.New("truncated input")
	// ErrTrailingData means bytes were left after the last field.
	ErrTrailingData = errors.New("trailing data")
	// ErrMalformed means a field had a length or value the format forbids.
	ErrMalformed = errors.New("malformed field")
)

// AppendLP appends lp(x) = u16be(len(x)) ‖ x to dst. It panics if x is longer
// than [MaxLP]: every caller bounds its inputs first, so that is a programmer
// error.
func AppendLP(dst, x []byte) []byte {
	if len(x) > MaxLP {
		panic(fmt.Sprintf("envelope: lp of %d bytes exceeds %d", len(x), MaxLP))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(x)))
	return append(dst, x...)
}

// AppendLPString is [AppendLP] for a string.
func AppendLPString(dst []byte, s string) []byte {
	if len(s) > MaxLP {
		panic(fmt.Sprintf("envelope: lp of %d bytes exceeds %d", len(s), MaxLP))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// AppendU16 appends v as 2 big-endian bytes.
func AppendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

// AppendU32 appends v as 4 big-endian bytes.
func AppendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// AppendU64 appends v as 8 big-endian bytes.
func AppendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// Reader is a strict decoder for concatenations of lp, u16, u32 and u64
// fields. The first failure sticks: later reads return zero values and
// [Reader.Err] / [Reader.Finish] report the first error, which wraps
// [ErrTruncated] or [ErrMalformed] and names the field. Byte slices returned by
// a Reader alias its input.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Err returns the first error met so far, or nil.
func (r *Reader) Err() error { return r.err }

// Finish returns the first error met, or an error wrapping [ErrTrailingData]
// if unread bytes remain.
func (r *Reader) Finish() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d unread bytes: %w", len(r.b), ErrTrailingData)
	}
	return nil
}

func (r *Reader) fail(field string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("read %s: %w", field, err)
	}
}

// Bytes returns the next n bytes; field names it in errors.
func (r *Reader) Bytes(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(field, ErrTruncated)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// U8 reads one byte.
func (r *Reader) U8(field string) uint8 {
	b := r.Bytes(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

// U16 reads a big-endian u16.
func (r *Reader) U16(field string) uint16 {
	b := r.Bytes(field, 2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// U32 reads a big-endian u32.
func (r *Reader) U32(field string) uint32 {
	b := r.Bytes(field, 4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// U64 reads a big-endian u64.
func (r *Reader) U64(field string) uint64 {
	b := r.Bytes(field, 8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// LP reads lp(x) and returns x (never nil on success, possibly empty).
func (r *Reader) LP(field string) []byte {
	n := r.U16(field + " length")
	if r.err != nil {
		return nil
	}
	return r.Bytes(field, int(n))
}

// LPFixed reads lp(x) and requires len(x) == n.
func (r *Reader) LPFixed(field string, n int) []byte {
	v := r.LP(field)
	if r.err != nil {
		return nil
	}
	if len(v) != n {
		r.fail(field, fmt.Errorf("%d bytes, want %d: %w", len(v), n, ErrMalformed))
		return nil
	}
	return v
}

// Label reads lp(label) and requires it to equal want.
func (r *Reader) Label(want string) {
	v := r.LP("label")
	if r.err != nil {
		return
	}
	if string(v) != want {
		r.fail("label", fmt.Errorf("got %q, want %q: %w", v, want, ErrMalformed))
	}
}

// Count reads a u32 element count and checks that n elements of at least
// minSize bytes each can fit in the unread input, so a hostile count cannot
// make the caller allocate more than the input's size.
func (r *Reader) Count(field string, minSize int) int {
	n := r.U32(field)
	if r.err != nil {
		return 0
	}
	if minSize > 0 && uint64(n) > uint64(len(r.b)/minSize) {
		r.fail(field, fmt.Errorf("%d entries cannot fit in %d bytes: %w", n, len(r.b), ErrTruncated))
		return 0
	}
	return int(n)
}
