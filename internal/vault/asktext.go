// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
)

// The Account Secret Key is shown to people (in the Emergency Kit) as "OV1-" and 53 base32 characters
// in groups of six: the 32 key bytes and one checksum byte, so that a mistyped key is caught before
// any KDF runs. The text is handled in byte slices that the caller clears, never in Go strings.

const askTextPrefix = "OV1"

var askEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrASKFormat means a typed Account Secret Key is malformed.
var ErrASKFormat = errors.New("not an Account Secret Key (want OV1- followed by 53 letters and digits)")

// ErrASKChecksum means a typed Account Secret Key is well formed but its checksum does not match.
var ErrASKChecksum = errors.New("checksum of the Account Secret Key does not match: check for a mistyped character")

func askChecksum(key []byte) byte {
	h := sha256.New()
	h.Write([]byte("ov/v1/ask-checksum"))
	h.Write(key)
	var sum [sha256.Size]byte
	return h.Sum(sum[:0])[0]
}

// Text returns the key as people type it: "OV1-XXXXXX-…". The caller clears the result.
func (k *AccountSecretKey) Text() []byte {
	var raw [KeyLen + 1]byte
	copy(raw[:], k.Bytes())
	raw[KeyLen] = askChecksum(raw[:KeyLen])
	enc := make([]byte, askEncoding.EncodedLen(len(raw)))
	askEncoding.Encode(enc, raw[:])
	clear(raw[:])
	out := make([]byte, 0, len(askTextPrefix)+len(enc)+(len(enc)+5)/6)
	out = append(out, askTextPrefix...)
	for i := 0; i < len(enc); i += 6 {
		out = append(out, '-')
		out = append(out, enc[i:min(i+6, len(enc))]...)
	}
	clear(enc)
	return out
}

// ParseAccountSecretKey reads a key typed as [AccountSecretKey.Text] shows it: case, dashes and
// white space do not matter. It does not keep text; the caller clears it. Errors wrap [ErrASKFormat]
// or [ErrASKChecksum] and never quote the input.
func ParseAccountSecretKey(text []byte) (*AccountSecretKey, error) {
	s := make([]byte, 0, len(text))
	defer func() { clear(s[:cap(s)]) }()
	for _, c := range text {
		switch {
		case c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case c >= 'a' && c <= 'z':
			s = append(s, c-'a'+'A')
		default:
			s = append(s, c)
		}
	}
	if len(s) < len(askTextPrefix) || string(s[:len(askTextPrefix)]) != askTextPrefix {
		return nil, ErrASKFormat
	}
	body := s[len(askTextPrefix):]
	if askEncoding.DecodedLen(len(body)) != KeyLen+1 {
		return nil, ErrASKFormat
	}
	var raw [KeyLen + 1]byte
	defer clear(raw[:])
	if n, err := askEncoding.Decode(raw[:], body); err != nil || n != KeyLen+1 {
		return nil, ErrASKFormat
	}
	if askChecksum(raw[:KeyLen]) != raw[KeyLen] {
		return nil, ErrASKChecksum
	}
	return AccountSecretKeyFromBytes(raw[:KeyLen])
}
