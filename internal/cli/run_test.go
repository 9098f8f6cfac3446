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
