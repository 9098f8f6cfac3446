// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// firstChunk is the buffer a request starts with; it doubles as bytes
// arrive, so a peer that announces 1 MiB and sends 10 bytes costs 4 KiB.
const firstChunk = 4 << 10

// readRequest reads one frame of the localapi wire format (u32 length ‖
// payload) of at most limit bytes. Unlike localapi.ReadFrame it never
// allocates what has not arrived: the buffer grows by doubling as bytes
// come in, and every buffer left behind is cleared (UNLOCK frames hold
// keys).
func readRequest(r io.Reader, limit int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(h[:]))
	if n == 0 || n > limit {
		return nil, fmt.Errorf("read frame: length %d not in 1..%d: %w", n, limit, localapi.ErrProtocol)
	}
	b := make([]byte, min(n, firstChunk))
	got := 0
	for got < n {
		if got == len(b) {
			nb := make([]byte, min(2*len(b), n))
			copy(nb, b)
			clear(b)
			b = nb
		}
		m, err := r.Read(b[got:])
		got += m
		if err != nil && got < n {
			clear(b)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}
