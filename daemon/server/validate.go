// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/names"
	"github.com/opaquevault/opaquevault/internal/store"
)

// Shapes of what the server accepts.
const (
	maxNameLen    = 128 // device names, in bytes (app and env names: internal/names)
	maxLabelLen   = 256 // machine labels
	maxEmailLen   = 254
	maxGrantLen   = 64 << 10
	maxInt64      = 1<<63 - 1
	verifierLen   = 32
	signatureLen  = 64
	publicKeyLen  = 32
	maxAuditLimit = 1000
)

// parseID decodes an identifier: exactly n bytes as 2n lowercase hex digits.
func parseID(field, s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, badRequest("%s: want %d lowercase hex digits, got %d characters", field, 2*n, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, badRequest("%s: want %d lowercase hex digits", field, 2*n)
		}
	}
	b, _ := hex.DecodeString(s)
	return b, nil
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

// checkText checks a name or label: valid UTF-8, no control characters, at most max bytes.
func checkText(field, s string, maxLen int, allowEmpty bool) error {
	switch {
	case s == "" && !allowEmpty:
		return badRequest("%s: empty", field)
	case len(s) > maxLen:
		return badRequest("%s: %d bytes, at most %d", field, len(s), maxLen)
	case !utf8.ValidString(s):
		return badRequest("%s: not UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return badRequest("%s: contains a control character", field)
		}
	}
	return nil
}

func checkName(field, s string) error { return checkText(field, s, maxNameLen, false) }

// checkScope checks an app or env name with the rule every layer uses (internal/names).
func checkScope(kind, s string) error {
	if err := names.Scope(kind, s); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// checkEmail checks the shape of an email address and returns its normalized form.
func checkEmail(s string) (string, error) {
	e := store.NormalizeEmail(s)
	if e == "" || len(e) > maxEmailLen || !utf8.ValidString(e) {
		return "", badRequest("email: want an address of at most %d bytes", maxEmailLen)
	}
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 {
		return "", badRequest("email: want local@domain")
	}
	domain := e[at+1:]
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", badRequest("email: malformed domain")
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", badRequest("email: contains white space or a control character")
		}
	}
	return e, nil
}

func checkLen(field string, b []byte, n int) error {
	if len(b) != n {
		return badRequest("%s: %d bytes, want %d", field, len(b), n)
	}
	return nil
}

func checkWrappedKey(field string, b []byte) error {
	if err := envelope.CheckWrappedKey(b); err != nil {
		return badRequest("%s: %d bytes with header %s: want %d bytes starting 01 01", field, len(b), headerHex(b), envelope.WrappedKeyLen)
	}
	return nil
}

func checkMachineWrap(field string, b []byte) error {
	if err := envelope.CheckMachineWrap(b); err != nil {
		return badRequest("%s: want %d bytes (ephemeral key, then a wrapped key starting 01 01), got %d", field, envelope.MachineWrapLen, len(b))
	}
	return nil
}

func headerHex(b []byte) string {
	if len(b) < 2 {
		return "(none)"
	}
	return hex.EncodeToString(b[:2])
}

// checkKDF checks the shape of Argon2id parameters. The floor that stops a downgrade is the
// client's to enforce (crypto.md §1.1); the server refuses only what no client could use.
func checkKDF(k api.KDF) error {
	switch {
	case k.T < 1 || k.T > 10:
		return badRequest("kdf: t=%d, want 1 to 10", k.T)
	case k.P < 1 || k.P > 16:
		return badRequest("kdf: p=%d, want 1 to 16", k.P)
	case k.M < 8*uint32(k.P) || k.M > 4<<20:
		return badRequest("kdf: m=%d KiB, want %d KiB to 4 GiB", k.M, 8*uint32(k.P))
	}
	return checkLen("kdf: salt", k.Salt, 16)
}

// checkDevice checks a device enrolment and returns its key id.
func checkDevice(d api.NewDevice) ([]byte, error) {
	keyID, err := parseID("device: key_id", d.KeyID, envelope.APIKeyIDLen)
	if err != nil {
		return nil, err
	}
	if err := checkLen("device: verifier", d.Verifier, verifierLen); err != nil {
		return nil, err
	}
	if err := checkName("device: name", d.Name); err != nil {
		return nil, err
	}
	return keyID, nil
}
