// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

func frameOf(n int, body []byte) []byte {
	b := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(n))
	return append(b, body...)
}

func TestReadRequest(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes: several doublings
	got, err := readRequest(io.MultiReader(bytes.NewReader(frameOf(len(body), body)), bytes.NewReader([]byte("next"))), localapi.MaxFrame)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("whole frame: %d bytes, %v", len(got), err)
	}
	for name, tc := range map[string]struct {
		in    []byte
		limit int
	}{
		"zero length":    {frameOf(0, nil), localapi.MaxFrame},
		"over the limit": {frameOf(4097, make([]byte, 4097)), 4096},
		"over 1 MiB":     {frameOf(localapi.MaxFrame+1, nil), localapi.MaxFrame},
	} {
		if _, err := readRequest(bytes.NewReader(tc.in), tc.limit); !errors.Is(err, localapi.ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", name, err)
		}
	}
	if _, err := readRequest(bytes.NewReader(frameOf(100, make([]byte, 10))), localapi.MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short frame: %v", err)
	}
}

// A peer that announces 1 MiB and sends 10 bytes costs a few KiB, not
// 1 MiB: the buffer grows with what arrives.
func TestReadRequestGrowsAsBytesArrive(t *testing.T) {
	in := frameOf(localapi.MaxFrame, make([]byte, 10))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := readRequest(bytes.NewReader(in), localapi.MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 2*firstChunk {
		t.Errorf("%d bytes allocated per partial frame of 10 bytes, want at most %d", per, 2*firstChunk)
	}
}
