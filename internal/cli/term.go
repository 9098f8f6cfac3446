// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"os"
	"regexp"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// varNameRE is what `ov secret import` accepts: POSIX names, plus "." and "-" (with a warning there).
var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// checkVarName requires an environment variable name. The error does not repeat the input: what
// was typed where a name belongs may be a value (`ov secret set TOKEN=abc`).
func checkVarName(name string) error {
	if len(name) > 255 || !varNameRE.MatchString(name) {
		return fmt.Errorf("invalid secret name (%d bytes): use letters, digits, _ . and -, starting with a letter or _", len(name))
	}
	return nil
}

// scopeNameRE is what app and env names may look like: they appear in paths, unit names and commands.
var scopeNameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}_.-]{0,127}$`)
