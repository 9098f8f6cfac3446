// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

// Token shapes (crypto.md §1.7).
const (
	APITokenPrefix     = "ovd_" // device API key
	MachineTokenPrefix = "ovm_" // machine credential
	APIKeyIDLen        = 8
	SecretLen          = 32 // API key secret, machine_auth, login_auth

	apiTokenRawLen     = APIKeyIDLen + SecretLen
	machineTokenRawLen = IDLen + SecretLen
)

// Verifier labels: SHA-256(lp(label) ‖ secret) is what the server stores.
const (
	labelAPIKeyVerifier  = "ov/v1/api-key-verifier"
	labelLoginVerifier   = "ov/v1/login-verifier"
	labelMachineVerifier = "ov/v1/machine-auth-verifier"
)

// ErrBadToken means a bearer token is not in its one canonical form.
var ErrBadToken = errors.New("malformed token")

var b64 = base64.RawURLEncoding.Strict()

// FormatAPIToken returns "ovd_" ‖ base64url-no-padding(keyID ‖ secret). The
// result is a credential: callers keep it out of logs and errors.
func FormatAPIToken(keyID [APIKeyIDLen]byte, secret *[SecretLen]byte) []byte {
	raw := make([]byte, 0, apiTokenRawLen)
	raw = append(raw, keyID[:]...)
	raw = append(raw, secret[:]...)
	defer clear(raw)
	return formatToken(APITokenPrefix, raw)
}

// ParseAPIToken parses a token made by [FormatAPIToken]. It accepts only the
// canonical form (exact prefix and length, URL-safe alphabet, no padding, no
// whitespace, zero padding bits), so Format(Parse(t)) == t. Errors wrap
// [ErrBadToken] and never contain the token.
func ParseAPIToken(tok []byte) (keyID [APIKeyIDLen]byte, secret [SecretLen]byte, err error) {
	var raw [apiTokenRawLen]byte
	defer clear(raw[:])
	if err := parseToken("API", APITokenPrefix, tok, raw[:]); err != nil {
		return keyID, secret, err
	}
	copy(keyID[:], raw[:APIKeyIDLen])
	copy(secret[:], raw[APIKeyIDLen:])
	return keyID, secret, nil
}

// FormatMachineToken returns "ovm_" ‖ base64url-no-padding(machine_id ‖
// machine_auth), the bearer credential a machine presents to the server.
func FormatMachineToken(machineID [IDLen]byte, machineAuth *[SecretLen]byte) []byte {
	raw := make([]byte, 0, machineTokenRawLen)
	raw = append(raw, machineID[:]...)
	raw = append(raw, machineAuth[:]...)
	defer clear(raw)
	return formatToken(MachineTokenPrefix, raw)
}

// ParseMachineToken parses a token made by [FormatMachineToken], as strictly
// as [ParseAPIToken]. Errors wrap [ErrBadToken].
func ParseMachineToken(tok []byte) (machineID [IDLen]byte, machineAuth [SecretLen]byte, err error) {
	var raw [machineTokenRawLen]byte
	defer clear(raw[:])
	if err := parseToken("machine", MachineTokenPrefix, tok, raw[:]); err != nil {
		return machineID, machineAuth, err
	}
	copy(machineID[:], raw[:IDLen])
	copy(machineAuth[:], raw[IDLen:])
	return machineID, machineAuth, nil
}

func formatToken(prefix string, raw []byte) []byte {
	out := make([]byte, len(prefix)+b64.EncodedLen(len(raw)))
	copy(out, prefix)
	b64.Encode(out[len(prefix):], raw)
	return out
}

func parseToken(kind, prefix string, tok, raw []byte) error {
	want := len(prefix) + b64.EncodedLen(len(raw))
	if len(tok) != want {
		return fmt.Errorf("envelope: parse %s token: %d bytes, want %d: %w", kind, len(tok), want, ErrBadToken)
	}
	if string(tok[:len(prefix)]) != prefix {
		return fmt.Errorf("envelope: parse %s token: prefix is not %q: %w", kind, prefix, ErrBadToken)
	}
	// The decoder skips '\r' and '\n', but with the exact length checked
	// above a skipped byte leaves too few characters for len(raw) bytes, so
	// exactly one spelling of each token parses (FuzzParseAPIToken checks).
	n, err := b64.Decode(raw, tok[len(prefix):])
	if err != nil || n != len(raw) {
		return fmt.Errorf("envelope: parse %s token: not canonical base64url: %w", kind, ErrBadToken)
	}
	return nil
}

func verifier(label string, secret *[SecretLen]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(AppendLPString(nil, label))
	h.Write(secret[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// APIKeyVerifier returns SHA-256(lp("ov/v1/api-key-verifier") ‖ secret), what
// the server stores for a device API key. A fast hash is right here: the
// secret has 256 bits of entropy (crypto.md §1.7).
func APIKeyVerifier(secret *[SecretLen]byte) [sha256.Size]byte {
	return verifier(labelAPIKeyVerifier, secret)
}

// LoginVerifier returns SHA-256(lp("ov/v1/login-verifier") ‖ login_auth),
// what the server stores to check device enrollment and password changes.
func LoginVerifier(loginAuth *[SecretLen]byte) [sha256.Size]byte {
	return verifier(labelLoginVerifier, loginAuth)
}

// MachineVerifier returns SHA-256(lp("ov/v1/machine-auth-verifier") ‖
// machine_auth), what the server stores for a machine key. (The label is the
// one that reproduces the known-answer vector machine.machine_verifier.)
func MachineVerifier(machineAuth *[SecretLen]byte) [sha256.Size]byte {
	return verifier(labelMachineVerifier, machineAuth)
}

// VerifierMatches compares a computed verifier with a stored one in constant
// time. A stored value of the wrong length never matches.
func VerifierMatches(computed [sha256.Size]byte, stored []byte) bool {
	return subtle.ConstantTimeCompare(computed[:], stored) == 1
}
