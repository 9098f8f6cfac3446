// SPDX-License-Identifier: Apache-2.0

//go:build linux

package credentials

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests need a directory tree that passes the ancestor checks, which
// t.TempDir (under the world-writable /tmp) never does. TestMain creates a
// private base: as root a 0755 root-owned directory under /var/lib (or /run),
// otherwise a directory in $HOME; tests that need it skip when there is none.
//
// Cases that need an unprivileged process re-execute the test binary as uid
// and gid 65534 with -test.run=TestHelperCredentials; the helper reads its
// instructions from the environment.

const (
	helperEnv = "OV_CREDENTIALS_TEST_HELPER"
	nobody    = 65534
	otherUID  = 4242 // owns nothing on a normal system
)

var (
	testBase    string
	testBaseErr error
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(m.Run())
	}
	testBase, testBaseErr = makeBase()
	code := m.Run()
	if testBase != "" {
		os.RemoveAll(testBase)
	}
	os.Exit(code)
}

func makeBase() (string, error) {
	var candidates []string
	perm := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		candidates, perm = []string{"/var/lib", "/run", "/var/cache"}, 0o755
	} else if home, err := os.UserHomeDir(); err == nil {
		candidates = []string{home}
	}
	var errs []error
	for _, c := range candidates {
		d, err := os.MkdirTemp(c, ".ov-credentials-test-")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Chmod(d, perm); err != nil {
			os.RemoveAll(d)
			errs = append(errs, err)
			continue
		}
		if err := checkTree(d); err != nil {
			os.RemoveAll(d)
			errs = append(errs, err)
			continue
		}
		return d, nil
	}
	return "", fmt.Errorf("no directory with safe ancestors for the tests (tried %v): %w", candidates, errors.Join(errs...))
}

func checkTree(d string) error {
	fd, err := openDir(d, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if e := checkDirs(fd, d, uint32(os.Geteuid())); e != nil {
		return e
	}
	return nil
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: files must be created with another owner")
	}
}

// testDir returns a new empty 0755 directory, owned by the caller, inside
// the safe base (searchable, so that the unprivileged helper can reach
// directories below it).
func testDir(t *testing.T) string {
	t.Helper()
	if testBase == "" {
		t.Skipf("skipping: %v", testBaseErr)
	}
	d, err := os.MkdirTemp(testBase, "t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func mkdir(t *testing.T, path string, perm os.FileMode, uid, gid int) string {
	t.Helper()
	if err := os.Mkdir(path, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	return path
}

// makeFile creates path with exactly perm (whatever the umask) and owner.
func makeFile(t *testing.T, path string, data []byte, perm os.FileMode, uid, gid int) string {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// testKey returns n recognisable bytes; errors must never contain them.
func testKey(n int) []byte {
	k := bytes.Repeat([]byte("K3Y-material!"), n/13+1)[:n]
	return k
}

func me() (int, int) { return os.Geteuid(), os.Getegid() }

// wantErr fails t unless err matches sentinel and its message contains all
// of substrings.
func wantErr(t *testing.T, err error, sentinel error, substrings ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", sentinel)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not match %v", err, sentinel)
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if k := testKey(13); bytes.Contains([]byte(err.Error()), k[:8]) || strings.Contains(err.Error(), hex.EncodeToString(k[:8])) {
		t.Errorf("error %q contains key bytes", err)
	}
}

// entries lists a directory, to find left-over temporary files.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

var (
	helperBinOnce sync.Once
	helperBin     string
	helperBinErr  error
)

// runAsNobody runs TestHelperCredentials as uid/gid 65534 with env, and
// fails t unless the helper passed. It skips when not root.
func runAsNobody(t *testing.T, env map[string]string) string {
	t.Helper()
	needRoot(t)
	if testBase == "" {
		t.Skipf("skipping: %v", testBaseErr)
	}
	helperBinOnce.Do(func() {
		// The go test binary sits in a 0700 directory; nobody needs a copy.
		var self string
		if self, helperBinErr = os.Executable(); helperBinErr != nil {
			return
		}
		helperBin = filepath.Join(testBase, "credentials.test")
		helperBinErr = copyExecutable(self, helperBin)
	})
	if helperBinErr != nil {
		t.Fatal(helperBinErr)
	}
	cmd := exec.Command(helperBin, "-test.run=^TestHelperCredentials$", "-test.v", "-test.count=1")
	cmd.Dir = testBase
	cmd.Env = []string{helperEnv + "=1", "PATH=/usr/bin:/bin", "HOME=/"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Skipf("cannot start a helper as uid %d: %v", nobody, err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperCredentials") {
		t.Fatalf("helper as uid %d failed: %v\n%s", nobody, err, out)
	}
	return string(out)
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, 0o755)
}

var sentinels = map[string]error{
	"ErrBadMode": ErrBadMode, "ErrSymlink": ErrSymlink, "ErrHardLinked": ErrHardLinked,
	"ErrWrongOwner": ErrWrongOwner, "ErrNotRegular": ErrNotRegular, "ErrWrongSize": ErrWrongSize,
	"ErrUnsafeDir": ErrUnsafeDir, "ErrExists": ErrExists, "ErrPermission": os.ErrPermission,
}

// TestHelperCredentials does one operation in a subprocess (see
// runAsNobody). OV_OP is readkey, load or write-as-root; OV_WANT is "ok" or
// a sentinel name; OV_DATA is the hex of the expected or written bytes.
func TestHelperCredentials(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("subprocess helper; runs only when re-executed by another test")
	}
	t.Logf("running as uid %d gid %d", os.Geteuid(), os.Getegid())
	data, _ := hex.DecodeString(os.Getenv("OV_DATA"))
	size, _ := strconv.Atoi(os.Getenv("OV_SIZE"))
	var got []byte
	var err error
	switch op := os.Getenv("OV_OP"); op {
	case "readkey":
		b, rerr := ReadKeyFile(os.Getenv("OV_PATH"), ReadOptions{Size: size})
		if rerr == nil {
			got = bytes.Clone(b.Bytes())
			b.Destroy()
		}
		err = rerr
	case "load":
		b, rerr := LoadWith(os.Getenv("OV_NAME"), ReadOptions{Size: size})
		if rerr == nil {
			got = bytes.Clone(b.Bytes())
			b.Destroy()
		}
		err = rerr
	case "write-as-root":
		err = WriteKeyFile(os.Getenv("OV_PATH"), data, WriteOptions{}.WithOwner(0, 0))
	default:
		t.Fatalf("unknown OV_OP %q", op)
	}
	want := os.Getenv("OV_WANT")
	if want == "ok" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if got != nil && !bytes.Equal(got, data) {
			t.Fatalf("read %x, want %x", got, data)
		}
		return
	}
	t.Logf("error: %v", err)
	wantErr(t, err, sentinels[want], strings.Split(os.Getenv("OV_WANT_MSG"), "|")...)
}
