// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ov": func() {
			UseTestKDF()
			if os.Getenv("OV_TEST_AGENT_NO_RUN") == "1" {
				agent.DisableRunForTest() // an agent started so answers RUN as an older agent does
			}
			os.Exit(Main(context.Background(), os.Args[1:], OSStdio()))
		},
		"ov-server": func() {
			os.Exit(server.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
		},
	})
}

func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:         "testdata/script",
		WorkdirRoot: testutil.SafeTempDir(t),
		Setup: func(e *testscript.Env) error {
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(e.WorkDir, ".config"))
			e.Setenv("XDG_STATE_HOME", filepath.Join(e.WorkDir, ".state"))
			e.Setenv("XDG_CACHE_HOME", filepath.Join(e.WorkDir, ".cache"))
			e.Setenv("OV_SERVER", "")
			e.Values[serverKey{}] = &serverHolder{}
			// Agents that `ov agent start` put in the background outlive a failed script: end them.
			work := e.WorkDir
			e.Defer(func() { killProcessesMentioning(work) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"serve": cmdServe,
			"rc":    cmdRC,
		},
	})
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

// serve [start|stop] [ov-server flags]: start a real ov-server on 127.0.0.1 with a SQLite file in the
// work dir, wait until it listens, and set $OV_SERVER; or stop it with SIGTERM.
func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) > 0 && args[0] == "stop" {
		p := ts.Value(serverKey{}).(*serverHolder).cmd
		if p == nil {
			ts.Fatalf("serve stop: no server running")
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
		return
	}
	if len(args) > 0 && args[0] == "start" {
		args = args[1:]
	}
	db := ts.MkAbs("ov-server.db")
	holder := ts.Value(serverKey{}).(*serverHolder)
	listen := "127.0.0.1:0"
	if holder.addr != "" {
		listen = holder.addr // a restart keeps the URL that configs already name
	}
	full := append([]string{"--listen", listen, "--db", db}, args...)
	cmd := exec.Command(lookPathIn(ts, "ov-server"), full...)
	cmd.Env = environOf(ts)
	stderr, err := cmd.StderrPipe()
	ts.Check(err)
	ts.Check(cmd.Start())
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				lines <- m[1]
				sent = true
			}
		}
		close(lines)
	}()
	select {
	case url, ok := <-lines:
		if !ok {
			_ = cmd.Wait()
			ts.Fatalf("ov-server exited before listening")
		}
		ts.Setenv("OV_SERVER", url)
		holder.addr = strings.TrimPrefix(url, "http://")
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		ts.Fatalf("ov-server did not listen within 20s")
	}
	ts.Defer(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	holder.cmd = cmd
}

type serverKey struct{}

// serverHolder is the server of one script (the newest `serve`).
type serverHolder struct {
	cmd  *exec.Cmd
	addr string
}

// rc WANT CMD [ARGS...]: run CMD and require exit status WANT; stdout and stderr are kept for the
// stdout/stderr matchers.
func cmdRC(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: rc WANT CMD [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("rc: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

func environOf(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "WORK"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

func lookPathIn(ts *testscript.TestScript, name string) string {
	for _, dir := range strings.Split(ts.Getenv("PATH"), string(os.PathListSeparator)) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	ts.Fatalf("%s not found in $PATH", name)
	return ""
}

// killProcessesMentioning sends SIGTERM to every process whose command line contains s.
func killProcessesMentioning(s string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}
