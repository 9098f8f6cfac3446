// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerNeverLinksDecryption fails if the ov-server binary depends on the decryption code
// (internal/vault) or on the primitives only decryption needs: the server stores ciphertext and
// must not be able to open it.
func TestServerNeverLinksDecryption(t *testing.T) {
	gobin, err := exec.LookPath("go") // go test puts $GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	const mod = "github.com/opaquevault/opaquevault"
	out, err := exec.Command(gobin, "list", "-deps", mod+"/cmd/ov-server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/ov-server: %v\n%s", err, out)
	}
	// The standard library's own copy (vendor/golang.org/x/crypto/chacha20poly1305, for TLS cipher
	// suites) is not matched: it is TLS, not the vault's record format.
	forbidden := []string{mod + "/internal/vault", "golang.org/x/crypto/chacha20poly1305", "golang.org/x/crypto/argon2"}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("ov-server depends on %s: the server must never link decryption code", d)
			}
		}
	}
	// The list must be real: it contains the server and the format package.
	for _, want := range []string{mod + "/daemon/server", mod + "/internal/envelope", mod + "/internal/store"} {
		found := false
		for _, d := range deps {
			found = found || d == want
		}
		if !found {
			t.Errorf("go list -deps does not list %s; the check above proves nothing", want)
		}
	}
}

// TestPackageDocsAndHeaders checks style B.2 for the packages of the server side: every package
// has a doc comment, and every Go file starts with the SPDX header.
func TestPackageDocsAndHeaders(t *testing.T) {
	for _, dir := range []string{".", "../../cmd/ov-server", "../../internal/store", "../../internal/store/sqlitestore", "../../internal/store/storetest"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		documented := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("// SPDX-License-Identifier: Apache-2.0\n")) {
				t.Errorf("%s: does not start with the SPDX header", f)
			}
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			pf, err := parser.ParseFile(token.NewFileSet(), f, b, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if pf.Doc != nil && strings.HasPrefix(pf.Doc.Text(), "Package "+pf.Name.Name+" ") || pf.Name.Name == "main" && pf.Doc != nil {
				documented = true
			}
		}
		if !documented {
			t.Errorf("%s: no package doc comment", dir)
		}
	}
}
