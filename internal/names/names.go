// SPDX-License-Identifier: Apache-2.0

// Package names owns the rules for app, env and secret names: one definition, one limit each, used by
// every layer (the CLI before it asks for a password, the server, the agent socket, MCP, the dotenv
// parser and the envelope formats). It is a leaf: it imports only the standard library and x/text.
//
// Scope names (apps and envs) are 1 to [MaxScope] bytes of NFC UTF-8: a letter or digit of any script,
// then letters, digits, "_", "." and "-". They appear in paths, unit names and commands.
//
// Secret names are 1 to [MaxSecret] bytes of ASCII: letters, digits, "_", "." and "-", not starting with
// "." or "-". That is what `ov secret import` accepts from a dotenv file and what `ov run` and the MCP
// tools pass through execve, as env(1) does. Names that are not POSIX ([A-Za-z_][A-Za-z0-9_]*) are
// allowed, but shells cannot set them and systemd's EnvironmentFile= drops them: [Portable] tells them
// apart so that callers can warn.
package names

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// MaxScope bounds app and env names, in bytes after NFC.
	MaxScope = 128
	// MaxSecret bounds secret names, in bytes.
	MaxSecret = 255
	// MaxEncoded is the most bytes any name takes in a wire format: the larger of the two limits.
	MaxEncoded = MaxSecret
)

// ErrBadName matches (errors.Is) every error of this package; its text is not repeated in theirs.
var ErrBadName = errors.New("invalid name")

type badName struct{ msg string }

func (e *badName) Error() string        { return e.msg }
func (e *badName) Is(target error) bool { return target == ErrBadName }

func bad(format string, args ...any) error { return &badName{fmt.Sprintf(format, args...)} }

// Scope checks an app or env name that is already NFC. kind ("app", "env") names it in the error.
func Scope(kind, s string) error {
	switch {
	case s == "":
		return bad("%s name: empty", kind)
	case len(s) > MaxScope:
		return bad("%s name: %d bytes, at most %d", kind, len(s), MaxScope)
	case !utf8.ValidString(s):
		return bad("%s name: not UTF-8", kind)
	case !norm.NFC.IsNormalString(s):
		return bad("%s name %q: not NFC", kind, s)
	}
	for i, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return bad("%s name %q: %s", kind, s, ScopeRule)
		}
	}
	return nil
}

// NormalizeScope returns NFC(s) after checking it with [Scope].
func NormalizeScope(kind, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", bad("%s name: not UTF-8", kind)
	}
	n := norm.NFC.String(s)
	return n, Scope(kind, n)
}

// ScopeRule says in words what [Scope] accepts.
const ScopeRule = "use letters, digits, _ . and -, starting with a letter or digit (at most 128 bytes)"

// SecretRule says in words what [Secret] accepts.
const SecretRule = "use ASCII letters, digits, _ . and -, not starting with . or - (at most 255 bytes)"

// Secret checks a secret name. The error does not repeat the input: what was typed where a name
// belongs may be a value (`ov secret set TOKEN=abc`).
func Secret(s string) error {
	if !ValidSecret(s) {
		return bad("invalid secret name (%d bytes): %s", len(s), SecretRule)
	}
	return nil
}

// ValidSecret reports whether s is a secret name (see the package comment).
func ValidSecret(s string) bool {
	if s == "" || len(s) > MaxSecret {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case SecretByte(c) && c != '.' && c != '-':
		case i > 0 && (c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Portable reports whether s is a POSIX variable name, [A-Za-z_][A-Za-z0-9_]*, which every shell and
// systemd's EnvironmentFile= accept. Callers warn about secret names that are valid but not portable.
func Portable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// SecretByte reports whether c may appear in a secret name (at some position).
func SecretByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}
