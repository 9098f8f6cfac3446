// SPDX-License-Identifier: Apache-2.0

//go:build linux

package secmem

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Subprocess helpers: a test that needs a fresh process (Harden changes the
// process for good) or an unprivileged one (root has CAP_IPC_LOCK, so mlock
// never fails for it) re-executes the test binary with -test.run=TestHelperX.
// The helper only runs when helperEnv is set.

const (
	helperEnv = "OV_SECMEM_TEST_HELPER"
	nobodyUID = 65534
)

func inHelper(t *testing.T) {
	t.Helper()
	if os.Getenv(helperEnv) != "1" {
		t.Skip("subprocess helper; runs only when re-executed by another test")
	}
}

// runHelper runs TestHelper<name> in a new process, as uid/gid 65534 when
// asNobody is set (the caller must be root), and fails t unless it passed.
func runHelper(t *testing.T, name string, asNobody bool) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var attr *syscall.SysProcAttr
	dir := ""
	if asNobody {
		// The go test binary lives in a 0700 directory; nobody needs its own copy.
		dir, err = os.MkdirTemp("/var/lib", "ov-secmem-test-")
		if err != nil {
			t.Skipf("cannot create a directory for the unprivileged helper: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "secmem.test")
		copyFile(t, bin, dst, 0o755)
		bin = dst
		attr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID, Groups: []uint32{}}}
	}
	cmd := exec.Command(bin, "-test.run=^TestHelper"+name+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{helperEnv + "=1", "PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Skipf("cannot start the helper subprocess (uid switch not possible here?): %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelper"+name) {
		t.Fatalf("helper %s failed: %v\n%s", name, err, out)
	}
	return string(out)
}

func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, perm); err != nil {
		t.Fatal(err)
	}
}
