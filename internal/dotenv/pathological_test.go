// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"strings"
	"testing"
)

// TestPathologicalInputs feeds large degenerate files to every format: they
// must be refused or accepted without blowing up, and warnings stay capped.
func TestPathologicalInputs(t *testing.T) {
	n := 256 << 10
	if testing.Short() {
		n = 16 << 10
	}
	inputs := map[string]string{
		"quotes":   "A=" + strings.Repeat("\"", n),
		"squotes":  "A=" + strings.Repeat("'", n),
		"bare":     strings.Repeat("a\n", n/2),
		"dupes":    strings.Repeat("A=1\n", n/4),
		"braces":   "A=" + strings.Repeat("${", n/2),
		"defaults": "A=" + strings.Repeat("${A:-", n/5),
		"dollars":  "A=\"" + strings.Repeat("$A", n/2) + "\"",
		"escapes":  "A=\"" + strings.Repeat("\\", n-4) + "\"",
		"json":     "{" + strings.Repeat("\"A\":\"b\",", n/8) + "\"B\":\"c\"}",
		"nesting":  strings.Repeat("[", n),
		"cr":       strings.Repeat("\r", n),
		"export":   strings.Repeat("export ", n/7),
		"garbage":  strings.Repeat("x y\n", n/4),
	}
	for name, in := range inputs {
		for f := range 4 {
			for _, expand := range []bool{false, f == 0} {
				res, err := Parse(bytes.NewReader([]byte(in)), Options{Format: Format(f), Expand: expand})
				if err == nil && len(res.Warnings) > maxWarnings+1 {
					t.Errorf("%s as %s: %d warnings", name, Format(f), len(res.Warnings))
				}
			}
		}
	}
}
