// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHouseRules checks the SPDX header of every Go file and the package
// documentation (style guide B.2).
func TestHouseRules(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	docs := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "// SPDX-License-Identifier: Apache-2.0\n") {
			t.Errorf("%s does not start with the SPDX header", name)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, data, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && !strings.HasSuffix(name, "_test.go") {
			docs++
			if !strings.HasPrefix(f.Doc.Text(), "Package dotenv ") {
				t.Errorf("%s: package doc does not start with \"Package dotenv \"", name)
			}
		}
	}
	if docs != 1 {
		t.Errorf("%d files have a package doc comment, want exactly 1 (doc.go)", docs)
	}
}
