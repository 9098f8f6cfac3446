// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
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
// Long single-line values too (a 377-byte token leaked through xxd, od -c and hexdump -C when only
// values up to 256 bytes were cut up), and long multi-line ones.
func TestRedactDumps(t *testing.T) {
	var tb strings.Builder // no repeats: every part of it is its own
	for h := sha256.Sum256([]byte("token")); tb.Len() < 377; h = sha256.Sum256(h[:]) {
		tb.WriteString(base64.RawURLEncoding.EncodeToString(h[:]))
	}
	token := tb.String()[:377]
	var pem strings.Builder
	pem.WriteString("-----BEGIN PRIVATE KEY-----\n")
	for i := range 40 {
		fmt.Fprintf(&pem, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC%013d\n", i*7919)
	}
	pem.WriteString("-----END PRIVATE KEY-----\n")
	for _, v := range [][]byte{[]byte("postgres://admin:S3cr3t-P@ss!word@db.example.com:5432/app"), []byte(token), []byte(pem.String())} {
		t.Run(fmt.Sprintf("%d bytes", len(v)), func(t *testing.T) { testRedactDumps(t, v) })
	}
}

func testRedactDumps(t *testing.T, v []byte) {
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
			if bytes.ContainsAny(w, "\n") {
				continue // a dump shows a line break as '.'
			}
			if bytes.Contains(got, w) || strings.Contains(squashed, string(w)) || strings.Contains(squashed, hex.EncodeToString(w)) {
				t.Fatalf("%s: %q (or its hex) survives:\n%s", tool, w, got)
			}
		}
	}
}
