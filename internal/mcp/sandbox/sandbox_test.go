// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const probeEnv = "OV_SANDBOX_TEST_PROBE"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == HelperArg {
		os.Exit(HelperMain(os.Args[2:]))
	}
	if targets := os.Getenv(probeEnv); targets != "" {
		os.Exit(probe(strings.Split(targets, ",")))
	}
	os.Exit(m.Run())
}

// probe tries each target: a unix socket to connect to, a file to read, or
// a directory to list. It prints one line per target: "REACHED path" or
// "blocked path".
func probe(targets []string) int {
	for _, t := range targets {
		reached := false
		if c, err := net.DialTimeout("unix", t, time.Second); err == nil {
			c.Close()
			reached = true
		}
		if b, err := os.ReadFile(t); err == nil && len(b) > 0 {
			reached = true
		}
		if es, err := os.ReadDir(t); err == nil && len(es) > 0 {
			reached = true
		}
		fmt.Printf("%s %s\n", map[bool]string{true: "REACHED", false: "blocked"}[reached], t)
	}
	return 0
}

// fixture is a home and a runtime directory with what a sandboxed command
// must not reach: a listening agent socket, a config file and a key file.
type fixture struct {
	home, rt, sock, config, state, cache string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	d := t.TempDir()
	f := &fixture{home: filepath.Join(d, "home"), rt: filepath.Join(d, "rt")}
	f.sock = filepath.Join(f.rt, "ov", "agent.sock")
	f.config = filepath.Join(f.home, ".config", "ov", "config")
	f.state = filepath.Join(f.home, ".local", "state", "ov", "highwater.json")
	f.cache = filepath.Join(f.home, ".cache", "ov", "key.cache")
	for _, p := range []string{f.sock, f.config, f.state, f.cache} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{f.config, f.state, f.cache} {
		if err := os.WriteFile(p, []byte("device_token = secret-token-bytes\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return f
}

func (f *fixture) env() []string {
	return []string{"HOME=" + f.home, "XDG_RUNTIME_DIR=" + f.rt, "PATH=" + os.Getenv("PATH")}
}

func (f *fixture) getenv(k string) string {
	for _, kv := range f.env() {
		if n, v, _ := strings.Cut(kv, "="); n == k {
			return v
		}
	}
	return ""
}

func run(t *testing.T, f *fixture, argv ...string) (string, string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd := Command(context.Background(), self, Paths(f.getenv), path, argv)
	cmd.Env = f.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil && strings.Contains(errb.String(), "sandbox:") {
		t.Fatalf("sandbox failed: %v: %s", err, errb.String())
	}
	return out.String(), errb.String(), err
}

// The fixture itself must be reachable from outside the sandbox, or the
// test below proves nothing.
func TestProbeReachesOutside(t *testing.T) {
	f := newFixture(t)
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(f.env(), probeEnv+"="+strings.Join([]string{f.sock, f.config, f.state, f.cache}, ","))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(out), "REACHED") != 4 {
		t.Fatalf("the probe does not reach the fixture from outside:\n%s", out)
	}
}

// A command that forks, lets its parent exit (re-parenting the child),
// double-forks into a new session and then looks for the agent: the
// socket, the files, and the same through the /proc entries of this (host)
// process. It reaches nothing; and what it leaves running is killed when
// the command ends.
func TestCommandCannotReachAgent(t *testing.T) {
	f := newFixture(t)
	self, _ := os.Executable()
	me := strconv.Itoa(os.Getpid())
	targets := []string{f.sock, f.config, f.state, f.cache, filepath.Dir(f.config),
		"/proc/" + me + "/root" + f.sock, "/proc/" + me + "/root" + f.config, "/proc/" + me + "/environ", "/proc/1/root" + f.config}
	outFile := filepath.Join(t.TempDir(), "probe.out")
	survived := filepath.Join(t.TempDir(), "survived")
	script := fmt.Sprintf(`
		export %s=%q
		# fork; the intermediate parent exits, the grandchild is re-parented and starts a new session
		( setsid sh -c '%q > %q.tmp; mv %q.tmp %q' & ) 
		# a daemon that outlives the command, if it can: it keeps writing
		( setsid sh -c 'while :; do echo x >> %q; sleep 0.1; done' & )
		i=0; while [ ! -e %q ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
		ls /proc | grep -c '^[0-9]' > %q.pids
		id -u; cat /proc/self/status | grep CapEff`,
		probeEnv, strings.Join(targets, ","), self, outFile, outFile, outFile, survived, outFile, outFile)
	stdout, stderr, err := run(t, f, "sh", "-c", script)
	if err != nil {
		t.Fatalf("command: %v\n%s", err, stderr)
	}
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatalf("the probe did not run: %v\n%s", err, stderr)
	}
	if strings.Count(string(got), "blocked") != len(targets) {
		t.Errorf("the sandboxed command reached the agent's files:\n%s", got)
	}
	if !strings.Contains(stdout, "CapEff:\t0000000000000000") {
		t.Errorf("the command has capabilities:\n%s", stdout)
	}
	if id := strings.Fields(stdout)[0]; id != strconv.Itoa(os.Getuid()) {
		t.Errorf("the command runs as uid %s, want %d", id, os.Getuid())
	}
	pids, _ := os.ReadFile(outFile + ".pids")
	if n, _ := strconv.Atoi(strings.TrimSpace(string(pids))); n == 0 || n > 10 {
		t.Errorf("the command sees %d processes, want only its own few", n)
	}
	before, err := os.ReadFile(survived)
	if err != nil || len(before) == 0 {
		t.Fatalf("the daemon never ran: %v", err)
	}
	time.Sleep(time.Second)
	if after, _ := os.ReadFile(survived); len(after) != len(before) {
		t.Error("a daemon started by the command outlived it")
	}
}

// A command cannot take the covers off: umount fails, also from a nested
// user namespace.
func TestCommandCannotUnmount(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	f := newFixture(t)
	dir := filepath.Dir(f.config)
	stdout, _, _ := run(t, f, "sh", "-c", fmt.Sprintf(`umount %q 2>/dev/null && echo UNMOUNTED1; unshare -Urm sh -c 'umount -l %q 2>/dev/null; cat %q 2>/dev/null && echo READ2'; echo end`, dir, dir, f.config))
	if strings.Contains(stdout, "UNMOUNTED1") || strings.Contains(stdout, "READ2") || !strings.Contains(stdout, "end") {
		t.Fatalf("the command took a cover off:\n%s", stdout)
	}
}

func TestPaths(t *testing.T) {
	got := Paths(func(k string) string {
		return map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/cfg", "XDG_RUNTIME_DIR": "/run/user/7", "CREDENTIALS_DIRECTORY": "rel"}[k]
	}, "/x/config")
	for _, want := range []string{"/etc/ov", "/run/ov", "/cfg/ov", "/home/u/.local/state/ov", "/home/u/.cache/ov", "/run/user/7", "/x/config"} {
		found := false
		for _, p := range got {
			found = found || p == want
		}
		if !found {
			t.Errorf("Paths() = %v, lacks %s", got, want)
		}
	}
	for _, p := range got {
		if !filepath.IsAbs(p) {
			t.Errorf("relative path %q", p)
		}
	}
}
