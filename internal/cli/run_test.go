// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

// ovEnv is a real ov-server on loopback and an `ov` binary (this test binary, as testscript runs it)
// with its own config.
type ovEnv struct {
	t   *testing.T
	dir string
	ov  string
	env []string
}

func newOVEnv(t *testing.T) *ovEnv {
	t.Helper()
	dir := testutil.SafeTempDir(t)
	db, err := sqlitestore.Open(t.Context(), filepath.Join(dir, "ov.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := server.New(t.Context(), server.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(bin, "ov")
	if err := os.Symlink(exe, ov); err != nil {
		t.Fatal(err)
	}
	e := &ovEnv{t: t, dir: dir, ov: ov, env: []string{
		"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "OV_SERVER=" + hs.URL,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_STATE_HOME=" + filepath.Join(dir, "state"),
	}}
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("auth", "register", "--email", "op@example.com", "--password-file", e.path("pw"))
	return e
}

func (e *ovEnv) path(name string) string { return filepath.Join(e.dir, name) }

func (e *ovEnv) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.ov, args...)
	c.Env = e.env
	return c
}

func (e *ovEnv) must(args ...string) string {
	e.t.Helper()
	out, err := e.cmd(args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("ov %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ov run replaces itself with the program: the program has ov's PID, receives the signals sent to
// it, and its exit status is the command's.
func TestRunExecsTheProgram(t *testing.T) {
	e := newOVEnv(t)
	if err := os.WriteFile(e.path("app.env"), []byte("TOKEN=s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("secret", "import", e.path("app.env"), "--app", "myapp", "--env", "dev", "--password-file", e.path("pw"))

	script := `echo "pid $$"; trap 'echo "got TERM"; exit 42' TERM; echo "token $TOKEN"; echo ready; while :; do sleep 0.02; done`
	c := e.cmd("run", "--app", "myapp", "--env", "dev", "--password-file", e.path("pw"), "--", "sh", "-c", script)
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	lines := map[string]string{}
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		lines[k] = v
		if k == "ready" {
			break
		}
	}
	if got := lines["pid"]; got != strconv.Itoa(c.Process.Pid) {
		t.Errorf("the program's PID is %s, ov's was %d: ov did not exec", got, c.Process.Pid)
	}
	if lines["token"] != "s3cr3t" {
		t.Errorf("the program saw TOKEN=%q", lines["token"])
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(exe, "/sh") && !strings.HasSuffix(exe, "/dash") && !strings.HasSuffix(exe, "/bash") {
		t.Errorf("/proc/PID/exe is %s, want the shell", exe)
	}
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for sc.Scan() {
			if sc.Text() == "got TERM" {
				lines["term"] = "yes"
			}
		}
		done <- c.Wait()
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("the program did not exit after SIGTERM")
	}
	if c.ProcessState.ExitCode() != 42 || lines["term"] != "yes" {
		t.Fatalf("after SIGTERM: exit %d (%v), trap ran: %q; want 42 and the trap", c.ProcessState.ExitCode(), err, lines["term"])
	}
}

// After `ov run --machine-key` has replaced itself with the program, nothing of the key is left in
// the process: its memory and environment hold the secrets' values (as they must) but not the key.
func TestRunLeavesNoKeyMaterial(t *testing.T) {
	e := newOVEnv(t)
	if err := os.WriteFile(e.path("app.env"), []byte("TOKEN=s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("secret", "import", e.path("app.env"), "--app", "myapp", "--env", "dev", "--password-file", e.path("pw"))
	if err := os.Mkdir(e.path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	key := e.path("keys/myapp.key")
	e.must("auth", "derive-machine-key", "--app", "myapp", "--env", "dev", "--out", key, "--password-file", e.path("pw"))
	keyBytes, err := os.ReadFile(key)
	if err != nil || len(keyBytes) != 32 {
		t.Fatalf("read key: %v (%d bytes)", err, len(keyBytes))
	}
	c := e.cmd("run", "--app", "myapp", "--env", "dev", "--machine-key", key, "--", "sh", "-c", "echo ready; while :; do sleep 0.2; done")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("program did not start: %q", sc.Text())
	}
	// Let the shell exec sleep, then scan the process that has ov's PID.
	time.Sleep(200 * time.Millisecond)
	mem := readProcessMemory(t, c.Process.Pid)
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(environ), "TOKEN=s3cr3t-value") {
		t.Fatal("the program's environment lacks the secret: the scan would prove nothing")
	}
	for what, buf := range map[string][]byte{"memory": mem, "environment": environ} {
		if bytesContains(buf, keyBytes) {
			t.Errorf("the machine key's bytes are in the program's %s", what)
		}
	}
	t.Logf("scanned %d bytes of memory of PID %d", len(mem), c.Process.Pid)
}

func bytesContains(b, sub []byte) bool { return strings.Contains(string(b), string(sub)) }

// readProcessMemory reads every readable mapping of pid (root, or the same uid and dumpable).
func readProcessMemory(t *testing.T, pid int) []byte {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Skipf("skip: cannot read /proc/%d/maps: %v", pid, err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Skipf("skip: cannot open /proc/%d/mem: %v", pid, err)
	}
	defer f.Close()
	var out []byte
	for _, line := range strings.Split(string(maps), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(fields[1], "r") || strings.HasSuffix(line, "[vvar]") || strings.HasSuffix(line, "[vsyscall]") {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
			continue
		}
		buf := make([]byte, hi-lo)
		n, _ := f.ReadAt(buf, int64(lo))
		out = append(out, buf[:n]...)
	}
	if len(out) == 0 {
		t.Skip("skip: no readable memory")
	}
	return out
}
