// SPDX-License-Identifier: Apache-2.0

package cli

import "github.com/opaquevault/opaquevault/internal/names"

// checkVarName requires a secret name (internal/names). The error does not repeat the input: what
// was typed where a name belongs may be a value (`ov secret set TOKEN=abc`).
func checkVarName(name string) error { return names.Secret(name) }

// dedupe returns names without repeats, in the order they first appear.
func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
