// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ov-mcp is taken from the directory of ov's real path first, then from PATH; a non-executable file
// there is passed over.
func TestFindMCPHelper(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	ov := filepath.Join(dir, "ov")
	if err := os.WriteFile(ov, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(other, "ov") // ov started through a symlink in another directory
	if err := os.Symlink(ov, link); err != nil {
		t.Fatal(err)
	}
	self := func() (string, error) { return link, nil }
	inPath := filepath.Join(other, MCPHelper)
	lookPath := func(name string) (string, error) {
		if _, err := os.Stat(inPath); err == nil && name == MCPHelper {
			return inPath, nil
		}
		return "", errors.New("not found")
	}
	if _, err := findMCPHelper(self, lookPath); err == nil || !strings.Contains(err.Error(), "not in "+dir+" nor in PATH") {
		t.Fatalf("no helper anywhere: %v", err)
	}
	if err := os.WriteFile(inPath, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findMCPHelper(self, lookPath); err != nil || got != inPath {
		t.Fatalf("helper in PATH only: %q, %v", got, err)
	}
	next := filepath.Join(dir, MCPHelper)
	if err := os.WriteFile(next, nil, 0o644); err != nil { // not executable: passed over
		t.Fatal(err)
	}
	if got, err := findMCPHelper(self, lookPath); err != nil || got != inPath {
		t.Fatalf("non-executable helper next to ov: %q, %v", got, err)
	}
	if err := os.Chmod(next, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findMCPHelper(self, lookPath); err != nil || got != next {
		t.Fatalf("helper next to ov: %q, %v; want %q", got, err, next)
	}
}
