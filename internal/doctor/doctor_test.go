// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

// units is a service manager that answers from a table: the D-Bus reads themselves are checked by
// internal/sd's decoding test and the e2e run on a booted systemd.
type units map[string]*sd.UnitInfo

func (u units) Unit(_ context.Context, name string) (*sd.UnitInfo, error) {
	if i, ok := u[name]; ok {
		return i, nil
	}
	if name == "broken.service" {
		return nil, errors.New("access denied")
	}
	return &sd.UnitInfo{Name: name, LoadState: "not-found", ActiveState: "inactive"}, nil
}

func TestAgentUnits(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		sys       units
		want      Status
		installed bool
		detail    string
	}{
		{"not installed", units{}, Skip, false, "not installed"},
		{"socket active", units{AgentSocket: {LoadState: "loaded", ActiveState: "active"}, AgentService: {LoadState: "loaded", ActiveState: "inactive"}}, Pass, true, "ov-agent.socket is active"},
		{"agent stopped", units{AgentSocket: {LoadState: "loaded", ActiveState: "inactive"}, AgentService: {LoadState: "loaded", ActiveState: "inactive"}}, Fail, true, "ov-agent.socket is inactive"},
		{"agent failed", units{AgentSocket: {LoadState: "loaded", ActiveState: "active"}, AgentService: {LoadState: "loaded", ActiveState: "failed"}}, Fail, true, "has failed"},
	} {
		r, inst := AgentUnits(ctx, c.sys)
		if r.Status != c.want || inst != c.installed || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%s: %+v installed=%v", c.name, r, inst)
		}
		if r.Status == Fail && r.Fix == "" {
			t.Errorf("%s: a failure without a fix", c.name)
		}
	}
}

func TestUnitChecks(t *testing.T) {
	u := &sd.UnitInfo{Name: "myapp.service", LoadState: "loaded", ActiveState: "active", SubState: "running"}
	if r := UnitState(u); r.Status != Pass {
		t.Errorf("UnitState %+v", r)
	}
	if r := UnitState(&sd.UnitInfo{Name: "x.service", LoadState: "not-found"}); r.Status != Fail {
		t.Errorf("not-found: %+v", r)
	}
	if r := DaemonReload(u); r.Status != Pass {
		t.Errorf("DaemonReload %+v", r)
	}
	stale := *u
	stale.NeedDaemonReload = true
	if r := DaemonReload(&stale); r.Status != Fail || !strings.Contains(r.Fix, "systemctl daemon-reload") {
		t.Errorf("missing daemon-reload: %+v", r)
	}
	if r := EnvironmentFile(u); r.Status != Pass {
		t.Errorf("EnvironmentFile %+v", r)
	}
	withFile := stale
	withFile.EnvironmentFiles = []sd.EnvironmentFile{{Path: "/opt/myapp/.env.production", Optional: true}}
	r := EnvironmentFile(&withFile)
	if r.Status != Fail || !strings.Contains(r.Detail, "-/opt/myapp/.env.production") || r.Fix != "sudo systemctl daemon-reload" {
		t.Errorf("EnvironmentFile in effect: %+v", r)
	}
}

func TestExecStart(t *testing.T) {
	dir := t.TempDir()
	ov := filepath.Join(dir, "ov")
	if err := os.WriteFile(ov, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(path string, argv ...string) *sd.UnitInfo {
		return &sd.UnitInfo{Name: "myapp.service", ExecStart: []sd.ExecCommand{{Path: path, Argv: argv}}}
	}
	r, run := ExecStart(mk(ov, "ov", "run", "--app", "myapp", "--env=production", "--machine-key", "/etc/ov/myapp.key", "--secrets", "A,B", "--", "/opt/myapp/bin/server", "--x"), "/usr/bin/ov")
	if r.Status != Pass || run == nil || run.App != "myapp" || run.Env != "production" || run.MachineKey != "/etc/ov/myapp.key" ||
		!reflect.DeepEqual(run.Secrets, []string{"A", "B"}) || run.Program != "/opt/myapp/bin/server" {
		t.Errorf("ExecStart %+v %+v", r, run)
	}
	// The guide's /usr/local/bin/ov when the package installed /usr/bin/ov.
	missing := filepath.Join(dir, "local", "bin", "ov")
	r, _ = ExecStart(mk(missing, missing, "run", "--app", "myapp", "--env", "production", "--", "/x"), "/usr/bin/ov")
	if r.Status != Fail || !strings.Contains(r.Detail, missing+", which does not exist") || !strings.Contains(r.Fix, "/usr/bin/ov") {
		t.Errorf("missing ov: %+v", r)
	}
	r, _ = ExecStart(mk("/opt/myapp/bin/server", "/opt/myapp/bin/server"), "/usr/bin/ov")
	if r.Status != Fail || !strings.Contains(r.Detail, "does not start through ov run") || !strings.Contains(r.Fix, "ov systemd cutover") {
		t.Errorf("not cut over: %+v", r)
	}
	notExec := filepath.Join(dir, "noexec", "ov")
	_ = os.MkdirAll(filepath.Dir(notExec), 0o755)
	_ = os.WriteFile(notExec, nil, 0o644)
	if r, _ = ExecStart(mk(notExec, notExec, "run", "--app", "a", "--env", "e", "--", "/x"), "/usr/bin/ov"); r.Status != Fail {
		t.Errorf("non-executable ov: %+v", r)
	}
}

func TestParseRun(t *testing.T) {
	for _, c := range []struct {
		argv []string
		ok   bool
		want RunArgs
	}{
		{[]string{"/usr/bin/ov", "run", "--app", "a", "--env", "e", "--", "/bin/x"}, true, RunArgs{Ov: "/usr/bin/ov", App: "a", Env: "e", Program: "/bin/x"}},
		{[]string{"ov", "run", "--max-age", "7d", "--machine-key-credential=ov-a", "--server", "https://v", "--app=a", "--env=e", "/bin/x"}, true,
			RunArgs{Ov: "ov", App: "a", Env: "e", KeyCredential: "ov-a", Server: "https://v", Program: "/bin/x"}},
		{[]string{"/usr/bin/ov", "secret", "list"}, false, RunArgs{}},
		{[]string{"/usr/bin/env", "run"}, false, RunArgs{}},
	} {
		got, ok := ParseRun(c.argv)
		if ok != c.ok || ok && !reflect.DeepEqual(*got, c.want) {
			t.Errorf("ParseRun(%q) = %+v, %v", c.argv, got, ok)
		}
	}
}

func writeKey(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "myapp.key")
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeyFile performs the guide's mistakes on real files: mode 0644, the wrong owner (derived with
// sudo, run as deploy), a symbolic link, a short file; each is a ✗ with its fix.
func TestKeyFile(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.SafeTempDir(t)
	p := writeKey(t, dir, 0o600)
	r, mk := KeyFile(p, me.Username)
	if r.Status != Pass || mk == nil {
		t.Fatalf("good key: %+v", r)
	}
	mk.Wipe()

	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	r, mk = KeyFile(p, me.Username)
	if r.Status != Fail || mk != nil || !strings.Contains(r.Detail, "mode 0644 is too open") || r.Fix != "sudo chmod 600 "+p {
		t.Errorf("mode 0644: %+v", r)
	}
	_ = os.Chmod(p, 0o600)

	// The wrong owner: the unit runs as another user than the key's owner.
	other := "nobody"
	if me.Username == "nobody" {
		other = "root"
	}
	r, _ = KeyFile(p, other)
	if r.Status != Fail || !strings.Contains(r.Detail, "is owned by") || !strings.HasPrefix(r.Fix, "sudo chown "+other+": "+p) {
		t.Errorf("wrong owner: %+v", r)
	}

	link := filepath.Join(dir, "link.key")
	_ = os.Symlink(p, link)
	if r, _ = KeyFile(link, me.Username); r.Status != Fail || !strings.Contains(r.Fix, "symbolic link") {
		t.Errorf("symlink: %+v", r)
	}
	short := filepath.Join(dir, "short.key")
	_ = os.WriteFile(short, []byte("short"), 0o600)
	if r, _ = KeyFile(short, me.Username); r.Status != Fail || !strings.Contains(r.Detail, "is 5 bytes, want 32") {
		t.Errorf("short: %+v", r)
	}
	if r, _ = KeyFile(filepath.Join(dir, "none.key"), me.Username); r.Status != Fail || !strings.Contains(r.Fix, "derive-machine-key") {
		t.Errorf("missing: %+v", r)
	}
	if r, _ = KeyFile(p, "no-such-user-ov-test"); r.Status != Fail {
		t.Errorf("unknown user: %+v", r)
	}
}

// TestClock runs a real HTTP server whose Date header is 10 minutes off.
func TestClock(t *testing.T) {
	var off time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Date", time.Now().Add(off).UTC().Format(http.TimeFormat))
	}))
	defer srv.Close()
	ctx := context.Background()
	if r := Clock(ctx, srv.URL, time.Now); r.Status != Pass {
		t.Errorf("in sync: %+v", r)
	}
	off = -10 * time.Minute
	if r := Clock(ctx, srv.URL, time.Now); r.Status != Fail || !strings.Contains(r.Detail, "differ by 10m") {
		t.Errorf("10 minutes off: %+v", r)
	}
	if r := Clock(ctx, "unix:///run/x.sock", time.Now); r.Status != Skip {
		t.Errorf("unix: %+v", r)
	}
}

func TestCacheDir(t *testing.T) {
	if d := CacheDir(&sd.UnitInfo{CacheDirectory: []string{"myapp"}}, "/home/deploy"); d != "/var/cache/myapp" {
		t.Errorf("CacheDirectory=: %s", d)
	}
	if d := CacheDir(&sd.UnitInfo{}, "/home/deploy"); d != "/home/deploy/.cache/ov" {
		t.Errorf("home: %s", d)
	}
}

func TestAgentEndpointMissing(t *testing.T) {
	p := filepath.Join(testutil.SafeTempDir(t), "agent.socket")
	if r := AgentEndpoint(context.Background(), p, false); r.Status != Skip {
		t.Errorf("not installed: %+v", r)
	}
	if r := AgentEndpoint(context.Background(), p, true); r.Status != Fail {
		t.Errorf("installed, no rendezvous: %+v", r)
	}
}

// TestAgentEndpointUntrusted: a rendezvous file another user could have written is a ✗, never
// followed.
func TestAgentEndpointUntrusted(t *testing.T) {
	dir := testutil.SafeTempDir(t)
	p := filepath.Join(dir, "agent.socket")
	if err := os.WriteFile(p, []byte("version=1\nsocket=/tmp/evil.sock\nlistener_uids=0\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(p, 0o666)
	r := AgentEndpoint(context.Background(), p, true)
	if r.Status != Fail || !strings.Contains(r.Detail, "not trusted") {
		t.Errorf("world-writable rendezvous: %+v", r)
	}
}
