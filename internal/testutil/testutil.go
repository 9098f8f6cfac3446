// SPDX-License-Identifier: Apache-2.0

// Package testutil holds helpers shared by tests. It must only be imported from _test.go files.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SafeTempDir returns a fresh directory, removed at the end of the test, whose ancestors are not
// world-writable: the checks on secret files refuse anything under /tmp, as they should, so tests
// that write configs or key files cannot use t.TempDir().
func SafeTempDir(t testing.TB) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("skip: no user cache directory for a safe temp dir: %v", err)
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "ov-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Clean(dir)
}
