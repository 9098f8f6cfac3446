// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"os"

	"golang.org/x/term"

	"github.com/opaquevault/opaquevault/internal/names"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// checkVarName requires a secret name (internal/names). The error does not repeat the input: what
// was typed where a name belongs may be a value (`ov secret set TOKEN=abc`).
func checkVarName(name string) error { return names.Secret(name) }
