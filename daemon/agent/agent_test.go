// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

var (
	key1 = bytes.Repeat([]byte{0x11}, 32)
	key2 = bytes.Repeat([]byte{0x22}, 32)
)

// The system agent's life under systemd: socket-activated as User=65534
// with the machine key from LoadCredential=; READY=1 only once the key is
// loaded; the API answers; SIGHUP re-reads the credential between
// RELOADING=1 and READY=1; SIGTERM sends STOPPING=1 and exits 0.
func TestActivationMachineKey(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, key: key1})
	ready := p.waitNotify(t, "READY=1")
	if ready != "READY=1\nSTATUS=unlocked: myapp/production" {
		t.Errorf("ready message %q", ready)
	}
	p.waitLog(t, `msg="key loaded".*key=machine(?s).*msg="agent ready"`)

	ctx := context.Background()
	st, err := p.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != localapi.StateUnlocked || st.Key != "machine" || st.OwnerUID != nobody || st.Mode != "system" ||
		st.App != "myapp" || st.Env != "production" || st.Fingerprint != fingerprint(t, key1) || st.Version != "test" {
		t.Errorf("status %+v", st)
	}

	// The owner gets exactly what it asks for.
	names := []string{"DATABASE_URL", "KEY_FINGERPRINT"}
	out := p.as(t, nobody, "get", "OV_NAMES="+strings.Join(names, ","))
	if want := "ok digest=" + wantDigest(names, fingerprint(t, key1)); !strings.HasPrefix(out, want) {
		t.Errorf("owner GET: %q, want %q", out, want)
	}
	if out := p.as(t, nobody, "list"); !strings.HasPrefix(out, "ok names=") {
		t.Errorf("owner LIST: %q", out)
	} else if got := strings.Split(strings.Fields(strings.TrimPrefix(out, "ok names="))[0], ","); !slices.Equal(sorted(got), []string{"DATABASE_URL", "KEY_FINGERPRINT", "STRIPE_SECRET_KEY"}) {
		t.Errorf("owner LIST: names %q, want exactly DATABASE_URL, KEY_FINGERPRINT and STRIPE_SECRET_KEY", got)
	}
	// Root may ask for the status but not for values.
	if _, err := p.client().Get(ctx, "myapp", "production", names); !errors.Is(err, localapi.ErrDenied) {
		t.Errorf("root GET: %v, want ErrDenied", err)
	}

	// SIGHUP: a new credential is read.
	p.writeKey(t, nobody, key2)
	p.signal(t, syscall.SIGHUP)
	rel := p.waitNotify(t, "RELOADING=1")
	if !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`).MatchString(rel) {
		t.Errorf("reloading message %q", rel)
	}
	if m := p.waitNotify(t, "READY=1"); m != "READY=1\nSTATUS=unlocked: myapp/production" {
		t.Errorf("ready after reload %q", m)
	}
	if st, err := p.client().Status(ctx); err != nil || st.Fingerprint != fingerprint(t, key2) {
		t.Errorf("after reload: %+v, %v; want the new key", st, err)
	}
	out = p.as(t, nobody, "get", "OV_NAMES=KEY_FINGERPRINT")
	if want := "ok digest=" + wantDigest([]string{"KEY_FINGERPRINT"}, fingerprint(t, key2)); !strings.HasPrefix(out, want) {
		t.Errorf("GET after reload: %q, want %q", out, want)
	}

	// A reload that fails keeps the key and says so.
	if err := os.Remove(filepath.Join(p.cred, credName)); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitNotify(t, "RELOADING=1")
	if m := p.waitNotify(t, "READY=1"); !strings.Contains(m, "unlocked: myapp/production (reload failed: ") {
		t.Errorf("failed reload: %q", m)
	}

	p.signal(t, syscall.SIGTERM)
	p.waitNotify(t, "STOPPING=1")
	if err := p.wait(t); err != nil {
		t.Errorf("agent exit: %v\n%s", err, p.logs.String())
	}
	if _, err := os.Stat(p.sock); err != nil {
		t.Errorf("the socket systemd owns was removed: %v", err)
	}
	logs := p.logs.String()
	for _, want := range []string{"agent ready", "reloading", "locked: key wiped", "agent stopped", "app=myapp", "env=production"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs, "time=") {
		t.Error("log has timestamps under systemd")
	}
	for _, v := range testSecrets {
		if strings.Contains(logs, v) {
			t.Errorf("log contains a secret value")
		}
	}
}

// Without a machine key the agent is ready but locked; UNLOCK, LOCK and
// scoped keys change what it serves.
func TestActivationLocked(t *testing.T) {
	p := startAgent(t, agentOpts{uid: 0, env: []string{"OV_APP=", "OV_ENV=", "OV_RATE=off", "WATCHDOG_USEC=400000"}})
	if m := p.waitNotify(t, "READY=1"); m != "READY=1\nSTATUS=locked" {
		t.Errorf("ready message %q", m)
	}
	// WatchdogSec=0.4s: pings every 0.2s.
	p.waitNotify(t, "WATCHDOG=1")
	ctx := context.Background()
	c := p.client()
	names := []string{"DATABASE_URL", "STRIPE_SECRET_KEY"}
	if _, err := c.Get(ctx, "myapp", "production", names); !errors.Is(err, localapi.ErrLocked) {
		t.Fatalf("GET while locked: %v", err)
	}

	ak := bytes.Repeat([]byte{0x33}, 32)
	u := &localapi.Unlock{AccountID: bytes.Repeat([]byte{1}, 16), AKVersion: 1, AccountKey: bytes.Clone(ak)}
	if err := c.Unlock(ctx, u); err != nil {
		t.Fatal(err)
	}
	// The idle lock (8 h by default) applies to keys handed over by UNLOCK.
	if m := p.waitNotify(t, "STATUS="); !regexp.MustCompile(`^STATUS=unlocked \(account key\); idle lock at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(m) {
		t.Errorf("status after unlock %q", m)
	}
	r, err := c.Get(ctx, "myapp", "production", names)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Lookup("DATABASE_URL"); !ok || string(v.Value) != testSecrets["DATABASE_URL"] || len(r.Secrets) != 2 {
		t.Errorf("GET after unlock: %v", r.Secrets)
	}
	r.Wipe()

	// The opener's verdict comes back with its code.
	bad := &localapi.Unlock{AccountID: []byte{1}, AccountKey: bytes.Clone(ak)}
	if err := c.Unlock(ctx, bad); !errors.Is(err, localapi.ErrDenied) {
		t.Errorf("unlock refused by the opener: %v", err)
	}
	if err := c.Unlock(ctx, &localapi.Unlock{AccountKey: make([]byte, 31)}); !errors.Is(err, localapi.ErrBadRequest) {
		t.Errorf("31-byte key: %v", err)
	}

	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	p.waitNotify(t, "STATUS=locked")
	if _, err := c.Get(ctx, "myapp", "production", names); !errors.Is(err, localapi.ErrLocked) {
		t.Errorf("GET after LOCK: %v", err)
	}

	// Scoped keys open only their scopes.
	sc := &localapi.Unlock{EnvKeys: []localapi.EnvKey{{App: "myapp", Env: "dev", Key: bytes.Repeat([]byte{0x44}, 32)}}}
	if err := c.Unlock(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if m := p.waitNotify(t, "STATUS="); !strings.HasPrefix(m, "STATUS=unlocked: myapp/dev; idle lock at ") {
		t.Errorf("status after scoped unlock %q", m)
	}
	if r, err := c.Get(ctx, "myapp", "dev", names); err != nil {
		t.Errorf("GET in scope: %v", err)
	} else {
		r.Wipe()
	}
	if _, err := c.Get(ctx, "myapp", "production", names); !errors.Is(err, localapi.ErrLocked) {
		t.Errorf("GET out of scope: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Key != "scoped" || len(st.Scopes) != 1 || st.Scopes[0].String() != "myapp/dev" {
		t.Errorf("status %+v, %v", st, err)
	}

	p.signal(t, syscall.SIGINT)
	p.waitNotify(t, "STOPPING=1")
	if err := p.wait(t); err != nil {
		t.Errorf("agent exit: %v", err)
	}
}

// A machine key credential that systemd did not pass: no READY=1, a
// failed status, a non-zero exit (systemd marks the unit failed).
func TestMissingCredential(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, noCred: true})
	m := p.waitNotify(t, "STATUS=failed")
	if !strings.Contains(m, `credential "ov-machine-key" was not passed to this unit`) {
		t.Errorf("status %q", m)
	}
	err := p.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("exit: %v, want a failure", err)
	}
	for _, s := range p.seen {
		if strings.HasPrefix(s, "READY=1") {
			t.Errorf("READY=1 sent without a key: %q", p.seen)
		}
	}
}

// Peer checks on every connection: another uid is refused (and logged with
// its uid and pid), root may only ask for the status and lock.
func TestPeerChecks(t *testing.T) {
	// 0666 so that the agent's own check, not the socket's mode, decides.
	p := startAgent(t, agentOpts{uid: nobody, key: key1, socketMode: 0o666})
	p.waitNotify(t, "READY=1")

	out := p.as(t, otherUID, "status")
	if !strings.HasPrefix(out, "error code=denied") {
		t.Errorf("uid %d STATUS: %q", otherUID, out)
	}
	pid := out[strings.LastIndex(out, "pid=")+4:]
	// Refused from SO_PEERCRED alone, before the request is read.
	p.waitLog(t, `access denied: another uid.* peer_pid=`+pid+` .*peer_uid=4242\n`)
	if out := p.as(t, otherUID, "get", "OV_NAMES=DATABASE_URL"); !strings.HasPrefix(out, "error code=denied") {
		t.Errorf("uid %d GET: %q", otherUID, out)
	}
	if out := p.as(t, nobody, "get", "OV_NAMES=DATABASE_URL"); !strings.HasPrefix(out, "ok ") {
		t.Errorf("owner GET: %q", out)
	}

	ctx := context.Background()
	c := p.client()
	if st, err := c.Status(ctx); err != nil || st.State != "unlocked" {
		t.Errorf("root STATUS: %+v, %v", st, err)
	}
	if _, err := c.List(ctx, "myapp", "production"); !errors.Is(err, localapi.ErrDenied) {
		t.Errorf("root LIST: %v", err)
	}
	if err := c.Unlock(ctx, &localapi.Unlock{AccountKey: make([]byte, 32)}); !errors.Is(err, localapi.ErrDenied) {
		t.Errorf("root UNLOCK: %v", err)
	}
	if err := c.Lock(ctx); err != nil {
		t.Errorf("root LOCK: %v", err)
	}
	if out := p.as(t, nobody, "get", "OV_NAMES=DATABASE_URL"); !strings.HasPrefix(out, "error code=locked") {
		t.Errorf("owner GET after root's LOCK: %q", out)
	}
}

// 10 reads at once, then rate_limited (30 a minute, burst 10, per uid);
// tokens come back at 0.5 a second, so on a slow machine a few more pass.
// STATUS from an allowed peer spends nothing; refused requests do.
func TestRateLimit(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, key: key1, socketMode: 0o666})
	p.waitNotify(t, "READY=1")
	c := p.client()
	for range 15 {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatalf("root STATUS: %v", err)
		}
	}
	start := time.Now()
	out := p.as(t, nobody, "burst")
	allowed := 10 + int(time.Since(start).Seconds()*0.5) + 1
	var n, d int
	var code string
	if _, err := fmt.Sscanf(out, "served=%d denied=%d code=%s", &n, &d, &code); err != nil || n < 10 || n > allowed || d != 0 || code != "rate_limited" {
		t.Errorf("owner: %q; want 10 (at most %d) LISTs served, then rate_limited", out, allowed)
	}
	p.waitLog(t, `rate limited.*peer_uid=65534 request=LIST`)
	// Another uid's refused requests are limited too.
	if out := p.as(t, otherUID, "burst"); !strings.Contains(out, "code=rate_limited") || !strings.HasPrefix(out, "served=0 denied=1") {
		t.Errorf("uid %d: %q", otherUID, out)
	}
}

// systemd-socket-activate, the real tool, starts the agent on the first
// connection with the socket it made.
func TestSystemdSocketActivate(t *testing.T) {
	needRoot(t)
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("skipping: systemd-socket-activate not installed (Debian package systemd)")
	}
	dir := safeDir(t)
	bin := testBinary(t)
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(tool, "-l", sock, "--fdname=agent",
		"-E", helperEnv+"=serve", "-E", "OV_APP=myapp", "-E", "OV_ENV=production",
		bin, "-test.run=^$")
	// A file, not a pipe: nothing is left to copy when the agent exits.
	lf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	logs := fileString(lf.Name())
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	c := localapi.NewClient(&localapi.Endpoint{Socket: sock, ListenerUIDs: []uint32{0}, System: true})
	var st *localapi.Status
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err = c.Status(context.Background()); err == nil || !errors.Is(err, localapi.ErrUnreachable) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || st.State != "locked" || st.App != "myapp" {
		t.Fatalf("status through systemd-socket-activate: %+v, %v\n%s", st, err, logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "agent stopped") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// fileString reads a log file on demand.
type fileString string

func (f fileString) String() string {
	b, _ := os.ReadFile(string(f))
	return string(b)
}

// sorted returns a sorted copy of names.
func sorted(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}
