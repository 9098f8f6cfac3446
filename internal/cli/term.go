// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"os"
	"regexp"
	"unicode"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// varNameRE is what `ov secret import` accepts: POSIX names, plus "." and "-" and a leading digit
// (with a warning there). `ov run` passes such names through execve, as env(1) does.
var varNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// checkVarName requires an environment variable name. The error does not repeat the input: what
// was typed where a name belongs may be a value (`ov secret set TOKEN=abc`).
func checkVarName(name string) error {
	if len(name) > 255 || !varNameRE.MatchString(name) {
		return fmt.Errorf("invalid secret name (%d bytes): use letters, digits, _ . and -, not starting with . or -", len(name))
	}
	return nil
}

// validScopeName reports whether an app or env name is letters and digits (any script), then also
// "_", "." and "-", at most 128 characters: names appear in paths, unit names and commands.
func validScopeName(s string) bool {
	n := 0
	for i, r := range s {
		n++
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return n > 0 && n <= 128
}
