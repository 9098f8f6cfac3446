// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestImports keeps the layering: vault may import envelope (formats) and
// secmem (locked memory for keys), and nothing else from this module.
func TestImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, "github.com/opaquevault/") && !slices.Contains([]string{"github.com/opaquevault/opaquevault/internal/envelope", "github.com/opaquevault/opaquevault/internal/secmem"}, p) {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
