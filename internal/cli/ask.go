// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
)

// The Account Secret Key is shown to people as "OV1-" and 53 base32 characters in groups: the 32 key
// bytes and one checksum byte, so that a mistyped key is caught before any KDF runs.

const askPrefix = "OV1"

var askEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// errASKFormat means a typed Account Secret Key is malformed.
var errASKFormat = errors.New("not an Account Secret Key (want OV1- followed by 53 letters and digits)")

func formatASK(key []byte) string {
	sum := sha256.Sum256(append([]byte("ov/v1/ask-checksum"), key...))
	enc := askEncoding.EncodeToString(append(append([]byte(nil), key...), sum[0]))
	var b strings.Builder
	b.WriteString(askPrefix)
	for i := 0; i < len(enc); i += 6 {
		b.WriteByte('-')
		b.WriteString(enc[i:min(i+6, len(enc))])
	}
	return b.String()
}

func parseASK(s string) ([]byte, error) {
	s = strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s))
	if !strings.HasPrefix(s, askPrefix) {
		return nil, errASKFormat
	}
	raw, err := askEncoding.DecodeString(s[len(askPrefix):])
	if err != nil || len(raw) != 33 {
		return nil, errASKFormat
	}
	key := raw[:32]
	sum := sha256.Sum256(append([]byte("ov/v1/ask-checksum"), key...))
	if sum[0] != raw[32] {
		clear(raw)
		return nil, errors.New("checksum of the Account Secret Key does not match: check for a mistyped character")
	}
	return key, nil
}
