// SPDX-License-Identifier: Apache-2.0

package agentinstall

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPackageDocAndSPDX(t *testing.T) {
	files, _ := filepath.Glob("*.go")
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
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package agentinstall ") {
			doc = true
		}
	}
	if !doc {
		t.Error("no package comment")
	}
}
