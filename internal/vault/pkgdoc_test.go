// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackageHygiene checks house style B.2: a package doc comment, and an
// SPDX header as the first line of every Go file.
func TestPackageHygiene(t *testing.T) { checkPackageHygiene(t, ".") }

func checkPackageHygiene(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	doc := false
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(src), "// SPDX-License-Identifier: Apache-2.0\n") {
			t.Errorf("%s does not start with the SPDX header", name)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && !strings.HasSuffix(name, "_test.go") && strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") {
			doc = true
		}
	}
	if !doc {
		t.Error("package has no doc comment")
	}
}

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
