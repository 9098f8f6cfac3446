// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/doctor"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/sdunit"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

// tableSystemd answers unit reads from a table, standing in for PID 1 (which this machine does not
// run; the e2e harness checks the same flows on a booted systemd).
type tableSystemd map[string]*sd.UnitInfo

func (m tableSystemd) Unit(_ context.Context, name string) (*sd.UnitInfo, error) {
	if u, ok := m[name]; ok {
		return u, nil
	}
	return &sd.UnitInfo{Name: name, LoadState: "not-found", ActiveState: "inactive"}, nil
}

func runOV(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// TestDoctorUnit: the unit names an ov that does not exist, needs a daemon-reload, still has its
// EnvironmentFile=, the agent is stopped, and the key (found through the unit's ExecStart=) has mode
// 0644: each is a ✗ with its fix, and the exit code is 1.
func TestDoctorUnit(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.SafeTempDir(t)
	key := filepath.Join(dir, "myapp.key")
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	missingOv := filepath.Join(dir, "usr/local/bin/ov")
	sys := tableSystemd{
		doctor.AgentSocket:  {Name: doctor.AgentSocket, LoadState: "loaded", ActiveState: "inactive"},
		doctor.AgentService: {Name: doctor.AgentService, LoadState: "loaded", ActiveState: "inactive"},
		"myapp.service": {Name: "myapp.service", LoadState: "loaded", ActiveState: "failed", NeedDaemonReload: true, User: me.Username,
			EnvironmentFiles: []sd.EnvironmentFile{{Path: "/opt/myapp/.env.production"}},
			ExecStart: []sd.ExecCommand{{Path: missingOv, Argv: []string{missingOv, "run", "--app", "myapp", "--env", "production",
				"--machine-key", key, "--secrets", "DATABASE_URL", "--", "/opt/myapp/bin/server"}}}},
	}
	oldSys, oldRV := doctorSystemd, doctorRendezvous
	doctorSystemd = func(context.Context) (doctor.Systemd, func(), error) { return sys, nil, nil }
	doctorRendezvous = filepath.Join(dir, "agent.socket")
	t.Cleanup(func() { doctorSystemd, doctorRendezvous = oldSys, oldRV })
	t.Setenv("OV_SERVER", "http://127.0.0.1:1")

	code, out, errs := runOV(t, "doctor", "--unit", "myapp")
	if code != ExitFailure {
		t.Errorf("exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"✗ agent: ov-agent.socket is inactive, so nothing listens for the agent\n    fix: sudo systemctl enable --now ov-agent.socket",
		"✗ agent socket: " + doctorRendezvous + " does not exist",
		"✗ unit: myapp.service has failed",
		"✗ daemon-reload: myapp.service changed on disk",
		"    fix: sudo systemctl daemon-reload && sudo systemctl restart myapp.service",
		"✗ EnvironmentFile=: still in effect: /opt/myapp/.env.production\n    fix: sudo systemctl daemon-reload",
		"✗ ExecStart=: runs " + missingOv + ", which does not exist",
		"✗ machine key: read machine key " + key + ": mode 0644 is too open (must be 0600 or 0400)\n    fix: sudo chmod 600 " + key,
		"✗ server: http://127.0.0.1:1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "ov: error: doctor: 8 of 9 checks failed") {
		t.Errorf("stderr: %s", errs)
	}
}

// TestRetireEnv: no run-start entry after the cut-over (or one for another app, or from before the
// cut-over) refuses; a real one renames the file (mv, 0600) and never replaces an existing target.
func TestRetireEnv(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/systemd/system/myapp.service", "[Service]\nExecStart=/opt/myapp/bin/server\nEnvironmentFile=/opt/myapp/.env.production\nEnvironmentFile=-/opt/myapp/.env.local\n", 0o644)
	write("opt/myapp/.env.production", "A=1\n", 0o640)
	env := filepath.Join(root, "opt/myapp/.env.production")

	code, _, errs := runOV(t, "systemd", "retire-env", "myapp.service", "--root", root)
	if code != ExitFailure || !strings.Contains(errs, "not cut over") {
		t.Fatalf("before the cut-over: %d %s", code, errs)
	}
	write("etc/systemd/system/myapp.service.d/"+sdunit.DropInName, "[Service]\nEnvironmentFile=\nExecStart=\nExecStart=/usr/bin/ov run --app myapp --env production --machine-key /etc/ov/myapp.key -- /opt/myapp/bin/server\n", 0o644)
	fi, _ := os.Stat(filepath.Join(root, "etc/systemd/system/myapp.service.d", sdunit.DropInName))
	cut := fi.ModTime()
	entry := func(app string, at time.Time) map[string]any {
		return map[string]any{"_SYSTEMD_UNIT": "myapp.service", "OV_EVENT": sd.RunStartEvent, "OV_APP": app, "OV_ENV": "production",
			"__REALTIME_TIMESTAMP": strconv.FormatInt(at.UnixMicro(), 10), "MESSAGE": "ov run: starting"}
	}
	var entries []map[string]any
	var jerr error
	old := journalEntries
	journalEntries = func(context.Context, string, string) ([]map[string]any, error) { return entries, jerr }
	t.Cleanup(func() { journalEntries = old })

	for _, c := range []struct {
		name    string
		entries []map[string]any
		err     error
		want    string
	}{
		{"empty journal", nil, nil, "shows no start of myapp.service from the vault (myapp/production) since the cut-over"},
		{"before the cut-over", []map[string]any{entry("myapp", cut.Add(-time.Hour))}, nil, "shows no start"},
		{"another app", []map[string]any{entry("other", cut.Add(time.Minute))}, nil, "shows no start"},
		{"journal unreadable", nil, errors.New("read the journal of myapp.service: exit status 1"), "read the journal"},
	} {
		entries, jerr = c.entries, c.err
		code, _, errs := runOV(t, "systemd", "retire-env", "myapp.service", "--root", root)
		if code != ExitFailure || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d: %s", c.name, code, errs)
		}
		if _, err := os.Stat(env); err != nil {
			t.Fatalf("%s: the .env moved: %v", c.name, err)
		}
	}

	entries, jerr = []map[string]any{entry("myapp", cut.Add(time.Minute))}, nil
	// A symbolic link in place of an environment file is refused, never followed.
	local := filepath.Join(root, "opt/myapp/.env.local")
	if err := os.Symlink("/etc/shadow", local); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runOV(t, "systemd", "retire-env", "myapp.service", "--root", root)
	if code != ExitFailure || !strings.Contains(errs, ".env.local: not a regular file") {
		t.Errorf("symlink: exit %d: %s", code, errs)
	}
	if _, err := os.Lstat(local); err != nil {
		t.Errorf("the symlink moved: %v", err)
	}
	_ = os.Remove(local)
	date := time.Now().UTC().Format("20060102")
	dst := env + ".retired-" + date
	// An existing target is never replaced.
	write("opt/myapp/.env.production.retired-"+date, "OLD=1\n", 0o600)
	code, _, errs = runOV(t, "systemd", "retire-env", "myapp.service", "--root", root)
	if code == 0 || !strings.Contains(errs, "file exists") {
		t.Errorf("existing target: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(dst); string(b) != "OLD=1\n" {
		t.Errorf("existing target replaced: %q", b)
	}
	_ = os.Remove(dst)
	inode := func(p string) uint64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	before := inode(env)
	code, out, errs := runOV(t, "systemd", "retire-env", "myapp.service", "--root", root)
	if code != 0 {
		t.Fatalf("retire: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "✓ Renamed "+env+" to "+dst+" (0600)") {
		t.Errorf("output: %s", out)
	}
	if _, err := os.Stat(env); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the .env is still there: %v", err)
	}
	st, err := os.Stat(dst)
	if err != nil || st.Mode().Perm() != 0o600 || inode(dst) != before {
		t.Errorf("retired file: %v %v (moved, not copied: inode %d, want %d)", st.Mode(), err, inode(dst), before)
	}
	code, out, _ = runOV(t, "systemd", "retire-env", "myapp.service", "--root", root)
	if code != 0 || !strings.Contains(out, "Nothing to retire") {
		t.Errorf("second run: %d %s", code, out)
	}
}

func TestRunAsUser(t *testing.T) {
	for _, c := range []struct {
		unit, want, err string
	}{
		{"[Service]\nUser=deploy\nExecStart=/bin/a\n", "deploy", ""},
		{"[Service]\nExecStart=/bin/a\n", "root", ""},
		{"[Service]\nUser=deploy\nExecStart=+/bin/a\n", "root", ""},
		{"[Service]\nUser=deploy\nExecStart=!/bin/a\n", "deploy", ""},
		{"[Service]\nType=oneshot\nUser=deploy\nExecStart=+/bin/a\nExecStart=/bin/b\n", "", "cannot be owned by both"},
	} {
		es, err := sdunit.Parse("u", []byte(c.unit))
		if err != nil {
			t.Fatal(err)
		}
		svc, err := sdunit.ServiceOf(es)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runAsUser(svc)
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %q, %v", c.unit, got, err)
		}
	}
}
