// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"testing"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

func TestGenerateValue(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		for _, tc := range []struct {
			kind  string
			n     int
			check func([]byte) bool
		}{
			{localapi.KindHex, 32, func(v []byte) bool { b, err := hex.DecodeString(string(v)); return err == nil && len(b) == 32 }},
			{localapi.KindBase64, 24, func(v []byte) bool {
				b, err := base64.StdEncoding.DecodeString(string(v))
				return err == nil && len(b) == 24
			}},
			{localapi.KindAlphanumeric, 40, regexp.MustCompile(`^[A-Za-z0-9]{40}$`).Match},
			{localapi.KindUUID, 0, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).Match},
		} {
			v, err := generateValue(tc.kind, tc.n)
			if err != nil || !tc.check(v) {
				t.Fatalf("%s: %q, %v", tc.kind, v, err)
			}
			if seen[string(v)] {
				t.Fatalf("%s: the same value twice", tc.kind)
			}
			seen[string(v)] = true
		}
	}
}
