// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// dumps formats v as hexdump -C, xxd and od -c do.
func dumps(v []byte) map[string]string {
	var hd, xx, od strings.Builder
	for off := 0; off < len(v); off += 16 {
		row := v[off:min(off+16, len(v))]
		fmt.Fprintf(&hd, "%08x  ", off)
		for i, c := range row {
			if i == 8 {
				hd.WriteByte(' ')
			}
			fmt.Fprintf(&hd, "%02x ", c)
		}
		fmt.Fprintf(&hd, " |%s|\n", row)
		fmt.Fprintf(&xx, "%08x: ", off)
		for i := 0; i < len(row); i += 2 {
			fmt.Fprintf(&xx, "%s ", hex.EncodeToString(row[i:min(i+2, len(row))]))
		}
		fmt.Fprintf(&xx, " %s\n", row)
		fmt.Fprintf(&od, "%07o", off)
		for _, c := range row {
			fmt.Fprintf(&od, "   %c", c)
		}
		od.WriteByte('\n')
	}
	return map[string]string{"hexdump -C": hd.String(), "xxd": xx.String(), "od -c": od.String()}
}

// A dump shows the value 16 bytes a line, in text and in hex: no run of 8 bytes of it survives.
func TestRedactDumps(t *testing.T) {
	v := []byte("postgres://admin:S3cr3t-P@ss!word@db.example.com:5432/app")
	r := NewRedactor(map[string][]byte{"DATABASE_URL": v})
	defer r.Wipe()
	for tool, out := range dumps(v) {
		got := r.Redact([]byte(out))
		if !bytes.Contains(got, []byte("[redacted:DATABASE_URL]")) {
			t.Errorf("%s: nothing redacted:\n%s", tool, got)
		}
		squashed := strings.Map(func(c rune) rune {
			if c == ' ' || c == '\n' {
				return -1
			}
			return c
		}, string(got))
		for i := 0; i+windowLen <= len(v); i++ {
			w := v[i : i+windowLen]
			if bytes.Contains(got, w) || strings.Contains(squashed, string(w)) || strings.Contains(squashed, hex.EncodeToString(w)) {
				t.Fatalf("%s: %q (or its hex) survives:\n%s", tool, w, got)
			}
		}
	}
}
