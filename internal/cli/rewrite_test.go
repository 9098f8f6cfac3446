// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/opaquevault/opaquevault/internal/testutil"
)

func TestRewriteKeyInPlace(t *testing.T) {
	dir := testutil.SafeTempDir(t)
	key := filepath.Join(dir, "myapp.key")
	if err := os.WriteFile(key, bytes.Repeat([]byte{1}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(key)
	fresh := bytes.Repeat([]byte{2}, 32)
	if err := rewriteKeyInPlace(key, fresh); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(key)
	after, _ := os.Stat(key)
	if !bytes.Equal(got, fresh) || after.Mode() != before.Mode() || !os.SameFile(before, after) {
		t.Fatalf("rewrite: content %x, mode %v (was %v), same file %v", got, after.Mode(), before.Mode(), os.SameFile(before, after))
	}
	// What it refuses: a symlink, a wrong size, a loose mode, a second hard link.
	link := filepath.Join(dir, "link.key")
	_ = os.Symlink(key, link)
	short := filepath.Join(dir, "short.key")
	_ = os.WriteFile(short, make([]byte, 31), 0o600)
	loose := filepath.Join(dir, "loose.key")
	_ = os.WriteFile(loose, make([]byte, 32), 0o644)
	hard := filepath.Join(dir, "hard.key")
	_ = os.Link(key, hard)
	for _, p := range []string{link, short, loose, hard} {
		if err := rewriteKeyInPlace(p, fresh); err == nil {
			t.Errorf("rewriteKeyInPlace(%s) succeeded", filepath.Base(p))
		}
	}
}
