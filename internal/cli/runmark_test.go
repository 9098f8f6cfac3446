// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

// TestRunMarkJournal runs a real systemd-journald in a private mount namespace and checks, with
// journalctl, what `ov systemd retire-env` relies on: `ov run`'s run-start entry carries the app,
// env, program and a count (no secret name or value), and an entry forged by a process outside the
// unit, naming the unit in its own _SYSTEMD_UNIT= field, is not attributed to the unit, so it cannot
// make retire-env move the .env. (That journald attributes the real entry to the unit by its cgroup
// needs PID 1: the e2e run checks it.)
func TestRunMarkJournal(t *testing.T) {
	if os.Getenv("OV_RUNMARK_INNER") != "" {
		t.Skip("the outer test")
	}
	if out := testutil.InPrivateJournal(t, "TestRunMarkInner", "OV_RUNMARK_INNER=1"); !strings.Contains(out, "--- PASS: TestRunMarkInner") {
		t.Fatalf("inner test did not pass:\n%s", out)
	}
}

// TestRunMarkInner runs inside TestRunMarkJournal's namespace.
func TestRunMarkInner(t *testing.T) {
	if os.Getenv("OV_RUNMARK_INNER") != "1" {
		t.Skip("subprocess of TestRunMarkJournal")
	}
	// The marker, from a process whose stderr is a journal stream, as a unit's is.
	c, err := net.Dial("unix", "/run/systemd/journal/stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("myapp\n\n6\n0\n0\n0\n0\n")); err != nil {
		t.Fatal(err)
	}
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	helper := exec.Command(self, "-test.run=^TestRunMarkHelper$")
	helper.Env = append(os.Environ(), "OV_RUNMARK_INNER=helper", fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	helper.Stderr = f
	if out, err := helper.Output(); err != nil || !strings.Contains(string(out), "marked=true") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The forgery: a native entry naming the unit in a trusted field.
	g, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: "/run/systemd/journal/socket", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("MESSAGE=forged\nOV_EVENT=" + sd.RunStartEvent + "\nOV_APP=myapp\nOV_ENV=production\n_SYSTEMD_UNIT=myapp.service\n")); err != nil {
		t.Fatal(err)
	}
	g.Close()

	var all []map[string]any
	for range 100 {
		out, err := exec.Command("journalctl", "--no-pager", "-o", "json", "OV_EVENT="+sd.RunStartEvent).Output()
		if err == nil {
			if all, err = parseJournalJSON(strings.NewReader(string(out))); err == nil && len(all) >= 2 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(all) != 2 {
		t.Fatalf("journal has %d run-start entries, want 2: %v", len(all), all)
	}
	var real map[string]any
	for _, e := range all {
		if e["MESSAGE"] == "forged" {
			if u, _ := e["_SYSTEMD_UNIT"].(string); u == "myapp.service" {
				t.Errorf("journald kept the forged _SYSTEMD_UNIT: %v", e)
			}
			continue
		}
		real = e
	}
	if real == nil {
		t.Fatal("no marker from ov run")
	}
	for k, want := range map[string]string{"OV_APP": "myapp", "OV_ENV": "production", "OV_PROGRAM": "/opt/myapp/bin/server", "OV_SECRETS": "2", "SYSLOG_IDENTIFIER": "ov"} {
		if got, _ := real[k].(string); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if msg, _ := real["MESSAGE"].(string); msg != "ov run: starting /opt/myapp/bin/server with 2 secret(s) of myapp/production from the vault" {
		t.Errorf("MESSAGE=%q", msg)
	}
	// What retire-env asks the journal: nothing for the unit (neither entry came from its cgroup).
	got, err := journalEntries(context.Background(), "/", "myapp.service")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("retire-env's query matched %d entries not written by the unit: %v", len(got), got)
	}
	if _, ok := startedFromVault(all, "myapp.service", "myapp", "production", time.Time{}); ok {
		t.Error("an entry outside the unit counted as a start from the vault")
	}
}

// TestRunMarkHelper is the `ov run` side: it runs with its stderr on the journal.
func TestRunMarkHelper(t *testing.T) {
	if os.Getenv("OV_RUNMARK_INNER") != "helper" {
		t.Skip("subprocess of TestRunMarkInner")
	}
	fmt.Printf("marked=%v\n", sd.RunStarted("myapp", "production", "/opt/myapp/bin/server", 2))
}
