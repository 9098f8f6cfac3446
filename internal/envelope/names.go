// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/opaquevault/opaquevault/internal/names"
)

// ErrBadName means an app, env or secret name is empty, too long, not UTF-8
// or (where checked) not NFC. It is internal/names' error, so that one
// errors.Is test covers both the format checks here and the naming rules.
var ErrBadName = names.ErrBadName

// NormalizeName returns NFC(name) and checks it with [CheckName]. Every name
// that is bound into AAD, blinded or signed goes through it (crypto.md §0).
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("envelope: normalize name: not UTF-8: %w", ErrBadName)
	}
	n := norm.NFC.String(name)
	if err := CheckName(n); err != nil {
		return "", err
	}
	return n, nil
}

// CheckName checks that name is already canonical: 1 to [MaxNameLen] bytes of
// UTF-8 in NFC. Errors wrap [ErrBadName].
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("envelope: check name: empty: %w", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("envelope: check name: %d bytes, at most %d: %w", len(name), MaxNameLen, ErrBadName)
	case !utf8.ValidString(name):
		return fmt.Errorf("envelope: check name: not UTF-8: %w", ErrBadName)
	case !norm.NFC.IsNormalString(name):
		return fmt.Errorf("envelope: check name %q: not NFC: %w", name, ErrBadName)
	}
	return nil
}
