// SPDX-License-Identifier: Apache-2.0

// Package childenv builds the environment of a program that ov starts with
// secrets: the program `ov run` replaces itself with, and the commands of
// `ov mcp serve`. One builder, so that both follow the same rules.
package childenv

import (
	"sort"
	"strings"
)

// Build returns base with the secrets added: entries of base without '='
// are dropped, a secret wins over an inherited variable of the same name,
// and the order is stable (base's, then the secrets by name). The strings
// cannot be wiped: execve needs them as strings.
func Build(base []string, secrets map[string]string) []string {
	env := make([]string, 0, len(base)+len(secrets))
	for _, kv := range base {
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if _, shadowed := secrets[name]; shadowed {
			continue
		}
		env = append(env, kv)
	}
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		env = append(env, n+"="+secrets[n])
	}
	return env
}
