// SPDX-License-Identifier: Apache-2.0

package secmem

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocAndSPDX fails when the package comment is missing or a file
// lacks the SPDX header.
func TestPackageDocAndSPDX(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no Go sources in the working directory (test binary run elsewhere)")
	}
	doc := false
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(src), "// SPDX-License-Identifier: Apache-2.0\n") {
			t.Errorf("%s does not start with the SPDX header", name)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package secmem ") {
			doc = true
		}
	}
	if !doc {
		t.Error("no file has a package comment starting with \"Package secmem \"")
	}
}
