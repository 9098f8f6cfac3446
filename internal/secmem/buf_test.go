// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package secmem

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func newBuf(t *testing.T, n int) *Buf {
	t.Helper()
	b, err := New(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Destroy)
	return b
}

// fill writes a recognisable non-zero pattern into b.
func fill(b *Buf) []byte {
	p := b.Bytes()
	for i := range p {
		p[i] = byte(0xA0 + i%16)
	}
	return bytes.Clone(p)
}

func TestBufRoundTrip(t *testing.T) {
	b := newBuf(t, 32)
	if b.Len() != 32 || len(b.Bytes()) != 32 || cap(b.Bytes()) != 32 {
		t.Fatalf("Len=%d len=%d cap=%d, want 32", b.Len(), len(b.Bytes()), cap(b.Bytes()))
	}
	if !bytes.Equal(b.Bytes(), make([]byte, 32)) {
		t.Fatal("new buffer is not zeroed")
	}
	want := fill(b)
	if got := b.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("read back %x, want %x", got, want)
	}
}

func TestBufLargerThanAPage(t *testing.T) {
	b := newBuf(t, 10000)
	want := fill(b)
	if !bytes.Equal(b.Bytes(), want) || b.Len() != 10000 {
		t.Fatal("round trip of a multi-page buffer failed")
	}
}

func TestNewRejectsBadSize(t *testing.T) {
	for _, n := range []int{0, -1} {
		if b, err := New(n); err == nil {
			b.Destroy()
			t.Errorf("New(%d) succeeded, want an error", n)
		}
	}
}

func TestWipeZeroesAndIsIdempotent(t *testing.T) {
	b := newBuf(t, 64)
	fill(b)
	p := b.Bytes()
	b.Wipe()
	if !bytes.Equal(p, make([]byte, 64)) {
		t.Fatalf("after Wipe: %x", p)
	}
	b.Wipe()
	if b.Len() != 64 || !bytes.Equal(b.Bytes(), make([]byte, 64)) {
		t.Fatal("second Wipe changed the buffer")
	}
	fill(b) // still usable after Wipe
	if b.Bytes()[0] == 0 {
		t.Fatal("buffer not writable after Wipe")
	}
}

func TestDestroyIsIdempotent(t *testing.T) {
	b, err := New(32)
	if err != nil {
		t.Fatal(err)
	}
	fill(b)
	b.Destroy()
	if b.Bytes() != nil || b.Len() != 0 || b.Locked() {
		t.Fatalf("after Destroy: Bytes=%v Len=%d Locked=%v", b.Bytes() != nil, b.Len(), b.Locked())
	}
	b.Destroy()
	b.Wipe()
	if b.Equal(b) {
		t.Fatal("a destroyed Buf compares equal")
	}
}

func TestEqual(t *testing.T) {
	a, b, c := newBuf(t, 32), newBuf(t, 32), newBuf(t, 31)
	fill(a)
	fill(b)
	if !a.Equal(b) {
		t.Fatal("equal contents compare unequal")
	}
	b.Bytes()[31] ^= 1
	if a.Equal(b) {
		t.Fatal("different contents compare equal")
	}
	if a.Equal(c) {
		t.Fatal("different lengths compare equal")
	}
}

func TestFormatRedacted(t *testing.T) {
	b := newBuf(t, 16)
	copy(b.Bytes(), "SUPERSECRETKEY!!")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, arg := range []any{b, *b, []*Buf{b}, struct{ K *Buf }{b}} {
			got := fmt.Sprintf(verb, arg)
			if strings.Contains(got, "SUPERSECRET") || strings.Contains(strings.ToLower(got), "5355504552") || !strings.Contains(got, "[redacted]") {
				t.Errorf("Sprintf(%q, %T) = %q", verb, arg, got)
			}
		}
	}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("msg", "key", b)
	if !strings.Contains(sb.String(), "key=[redacted]") {
		t.Errorf("slog output %q", sb.String())
	}
}

func TestMarshalRefuses(t *testing.T) {
	b := newBuf(t, 16)
	copy(b.Bytes(), "SUPERSECRETKEY!!")
	if out, err := json.Marshal(b); err == nil || !errors.Is(err, errMarshal) {
		t.Errorf("json.Marshal(*Buf) = %q, %v; want errMarshal", out, err)
	}
	if out, err := json.Marshal(struct{ Key *Buf }{b}); err == nil {
		t.Errorf("json.Marshal(struct) = %q, want an error", out)
	}
	if out, err := xml.Marshal(struct{ Key *Buf }{b}); err == nil {
		t.Errorf("xml.Marshal = %q, want an error", out)
	}
	if err := gob.NewEncoder(new(bytes.Buffer)).Encode(struct{ Key *Buf }{b}); err == nil {
		t.Error("gob encoding succeeded, want an error")
	}
}

func TestFormatLimit(t *testing.T) {
	for v, want := range map[uint64]string{0: "0 bytes", 65536: "64 KiB", 8 << 20: "8 MiB", 1000: "1000 bytes", Unlimited: "unlimited"} {
		if got := FormatLimit(v); got != want {
			t.Errorf("FormatLimit(%d) = %q, want %q", v, got, want)
		}
	}
}
