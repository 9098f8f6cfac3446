// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"os"
	"regexp"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkVarName requires a POSIX environment variable name.
func checkVarName(name string) error {
	if !varNameRE.MatchString(name) {
		return fmt.Errorf("invalid secret name %q: use letters, digits and _, not starting with a digit", name)
	}
	return nil
}
