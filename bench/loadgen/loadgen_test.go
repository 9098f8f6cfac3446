// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	// The load generator starts itself as the trivial server.
	if file, ok := isTrivialFlag(os.Args[1:]); ok {
		if err := serveTrivial(file); err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// TestLoadgenSmoke runs every phase briefly against a real ov-server built from this tree: it
// fails on any request error, on an environment that does not hold what its writer committed
// (after the mixes and after the overload), and on a shed answer without Retry-After.
func TestLoadgenSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ov-server and runs it under load for a few seconds")
	}
	bin := filepath.Join(t.TempDir(), "ov-server")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in $PATH to build ov-server: %v", err)
	}
	build := exec.Command(gobin, "build", "-o", bin, "github.com/opaquevault/opaquevault/cmd/ov-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ov-server: %v\n%s", err, out)
	}
	if code := run([]string{"-ov-server", bin, "-duration", "500ms", "-rounds", "1", "-clients", "4", "-secrets", "20"}); code != 0 {
		t.Fatalf("loadgen exited %d", code)
	}
}
