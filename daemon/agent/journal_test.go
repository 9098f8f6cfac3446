// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/internal/peercred"
)

const journald = "/lib/systemd/systemd-journald"

// needJournal skips unless a private systemd-journald can run here.
func needJournal(t *testing.T) {
	t.Helper()
	needRoot(t)
	if _, err := os.Stat(journald); err != nil {
		t.Skip("skipping: systemd-journald not installed (Debian package systemd)")
	}
	for _, tool := range []string{"unshare", "setpriv", "nsenter", "journalctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed (util-linux, systemd)", tool)
		}
	}
	for _, d := range []string{"/run/systemd", "/run/log"} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Skipf("skipping: no %s to mount a private journal over", d)
		}
	}
}

// journalCommand starts the agent as a service whose stderr is the
// journal: in a private mount namespace, a systemd-journald of its own
// (/run/systemd and /run/log are private tmpfs there), then the agent as
// uid with its stderr connected to journald's stream socket and
// $JOURNAL_STREAM set, as systemd does for StandardError=journal (see
// journalStderr). Its pid stays the shell's, for LISTEN_PID.
func (p *agentProc) journalCommand(t *testing.T, uid uint32) *exec.Cmd {
	t.Helper()
	needJournal(t)
	p.journald = filepath.Join(p.dir, "journald.pid")
	script := `set -e
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/log
mkdir -p /run/systemd/journal
env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_FDNAMES ` + journald + ` </dev/null >/dev/null 2>&1 3>&- &
echo $! > '` + p.journald + `'
i=0; while [ ! -S /run/systemd/journal/socket ] || [ ! -S /run/systemd/journal/stdout ]; do
  [ $i -lt 200 ] || { echo "journald did not start" >&2; exit 1; }
  sleep 0.05; i=$((i+1))
done
LISTEN_PID=$$; WATCHDOG_PID=$$; export LISTEN_PID WATCHDOG_PID
exec setpriv --reuid=` + strconv.Itoa(int(uid)) + ` --regid=` + strconv.Itoa(int(uid)) + ` --clear-groups -- "$0" "$@"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, p.bin, "-test.run=^$")
	t.Cleanup(func() {
		b, err := os.ReadFile(p.journald)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	})
	return cmd
}

// journal returns the agent's journal entries that match the journalctl
// matches (FIELD=value), in -o verbose.
func (p *agentProc) journal(t *testing.T, matches ...string) string {
	t.Helper()
	args := append([]string{"--mount=/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/ns/mnt", "journalctl", "--no-pager", "-o", "verbose"}, matches...)
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No entries") {
		t.Fatalf("journalctl %s: %v\n%s", strings.Join(matches, " "), err, out)
	}
	return string(out)
}

// waitJournal waits until an entry matching matches has every one of want.
func (p *agentProc) waitJournal(t *testing.T, want []string, matches ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := p.journal(t, matches...)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(out, w)
		}
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no journal entry %v with %q:\n%s\nall entries:\n%s", matches, want, out, p.journal(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// journalStderr connects stderr to journald's stream socket and sets
// $JOURNAL_STREAM, as systemd does before it starts a service with
// StandardError=journal; internal/sd then logs native journal entries.
func journalStderr() error {
	c, err := net.Dial("unix", "/run/systemd/journal/stdout")
	if err != nil {
		return err
	}
	// identifier, unit, priority, level prefix, forward to syslog, kmsg, console
	if _, err := c.Write([]byte("agent.test\n\n6\n0\n0\n0\n0\n")); err != nil {
		return err
	}
	f, err := c.(*net.UnixConn).File()
	c.Close()
	if err != nil {
		return err
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		return err
	}
	return os.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
}

// The distinct-secret warning as journald stores it: a native entry at
// warning priority with the OV_* fields an operator filters on
// (journalctl OV_PEER_UID=4242 OV_APP=myapp), once per window, and no
// secret value anywhere in the agent's journal.
func TestDistinctSecretsWarningJournal(t *testing.T) {
	p := startAgent(t, agentOpts{uid: otherUID, key: key1, journal: true,
		env: []string{"OV_JOURNAL=1", "OV_DISTINCT_SECRETS=2", "OV_RATE=off"}})
	p.waitNotify(t, "READY=1")
	for _, names := range []string{"DATABASE_URL,STRIPE_SECRET_KEY", "KEY_FINGERPRINT", "DATABASE_URL"} {
		if o := p.as(t, otherUID, "get", "OV_NAMES="+names); !strings.HasPrefix(o, "ok ") {
			t.Fatalf("GET %s: %q\n%s", names, o, p.logs.String())
		}
	}
	const msg = "MESSAGE=many distinct secrets read by one uid in one scope"
	out := p.waitJournal(t, []string{msg, "PRIORITY=4", "OV_PEER_UID=4242", "OV_APP=myapp", "OV_ENV=production",
		"OV_DISTINCT_SECRETS=3", "OV_THRESHOLD=2", "OV_WINDOW=1h0m0s", "OV_REQUEST=GET", "_TRANSPORT=journal"},
		"OV_PEER_UID=4242", "OV_DISTINCT_SECRETS=3")
	if n := strings.Count(out, msg); n != 1 {
		t.Errorf("%d warnings in one window, want 1:\n%s", n, out)
	}
	if err := peercred.ProbePeerPIDFD(); err == nil {
		if !strings.Contains(out, "OV_PEER_PIDFD=verified") || !strings.Contains(out, "OV_PEER_EXE="+p.bin) {
			t.Errorf("the warning lacks the pidfd-verified OV_PEER_EXE:\n%s", out)
		}
	} else {
		t.Logf("not checking OV_PEER_EXE: this kernel has no SO_PEERPIDFD (%v)", err)
	}
	all := p.journal(t)
	if !strings.Contains(all, `MESSAGE=served secrets`) {
		t.Errorf("the journal lacks the audit lines:\n%s", all)
	}
	for _, v := range testSecrets {
		if strings.Contains(all, v) {
			t.Error("a secret value is in the journal")
		}
	}
}
