// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

// runInvite runs `ov-server invite ARGS...` and returns its exit code, stdout and stderr.
func runInvite(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(bg, append([]string{"invite"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// mainClient is an unauthenticated client of a server started with startMain.
func mainClient(t *testing.T, r *running) *api.Client {
	c, err := api.NewClient(r.shown, api.ClientOptions{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRegistrationClosed: with --registration closed nobody can create an account, with or
// without an invite code.
func TestRegistrationClosed(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ov.db")
	r := startMain(t, "--listen", "127.0.0.1:0", "--db", db, "--registration", "closed")
	code, inv, _ := runInvite("create", "--db", db)
	if code != 0 {
		t.Fatal("invite create failed")
	}
	h := &harness{t: t}
	_, req := h.registerRequest("mallory@example.com")
	_, err := mainClient(t, r).Register(bg, req)
	wantAPIError(t, err, 403, api.CodeRegistrationClosed)
	req.Invite = strings.TrimSpace(inv)
	_, err = mainClient(t, r).Register(bg, req)
	wantAPIError(t, err, 403, api.CodeRegistrationClosed)
}

// TestRegistrationInvite: with --registration invite, registering needs a code made by
// `ov-server invite create`; each code works once, and is stored only as its verifier.
func TestRegistrationInvite(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ov.db")
	r := startMain(t, "--listen", "127.0.0.1:0", "--db", db, "--registration", "invite", "--log-level", "debug")
	c := mainClient(t, r)
	h := &harness{t: t}

	_, req := h.registerRequest("nobody@example.com")
	_, err := c.Register(bg, req)
	wantAPIError(t, err, 403, api.CodeInviteRequired)
	req.Invite = "ovi_" + strings.Repeat("A", 43) // well-formed, never issued
	_, err = c.Register(bg, req)
	wantAPIError(t, err, 403, api.CodeInviteInvalid)
	req.Invite = "letmein"
	_, err = c.Register(bg, req)
	wantAPIError(t, err, 403, api.CodeInviteInvalid)

	code, out, errOut := runInvite("create", "--db", db, "--note", "for alice", "--expires", "1h")
	inv := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(inv, "ovi_") || strings.Count(out, "\n") != 1 || strings.Contains(errOut, inv) {
		t.Fatalf("invite create: %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, req = h.registerRequest("alice@example.com")
	req.Invite = inv
	if _, err := c.Register(bg, req); err != nil {
		t.Fatalf("register with a fresh invite: %v", err)
	}
	// The attack: the same code a second time.
	_, req2 := h.registerRequest("eve@example.com")
	req2.Invite = inv
	_, err = c.Register(bg, req2)
	wantAPIError(t, err, 403, api.CodeInviteInvalid)

	// A revoked code is refused; an expired one too.
	_, out, _ = runInvite("create", "--db", db)
	revoked := strings.TrimSpace(out)
	_, list, _ := runInvite("list", "--db", db)
	var revokeID string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " unused ") {
			revokeID = strings.Fields(line)[0]
		}
	}
	if code, _, e := runInvite("revoke", revokeID, "--db", db); code != 0 {
		t.Fatalf("revoke %s: %s", revokeID, e)
	}
	req2.Invite = revoked
	_, err = c.Register(bg, req2)
	wantAPIError(t, err, 403, api.CodeInviteInvalid)
	_, list, _ = runInvite("list", "--db", db)
	if !strings.Contains(list, "for alice") || strings.Count(list, " used ") != 1 || strings.Count(list, " revoked ") != 1 {
		t.Fatalf("invite list:\n%s", list)
	}

	// Codes are secrets: neither the database nor the server's log holds one.
	r.stop(t)
	for _, f := range []string{db, db + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, code := range []string{inv, revoked} {
			if bytes.Contains(b, []byte(code)) || bytes.Contains(b, []byte(strings.TrimPrefix(code, "ovi_"))) {
				t.Fatalf("%s holds an invite code", f)
			}
		}
	}
	if log := r.stderr.String(); strings.Contains(log, inv) || strings.Contains(log, revoked) {
		t.Fatalf("the server log holds an invite code:\n%s", log)
	}
}

// TestRegistrationDefault: without --registration, a server reachable only from this host is
// open, and one listening beyond loopback needs invites.
func TestRegistrationDefault(t *testing.T) {
	h := &harness{t: t}
	r := startMain(t, "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "ov.db"))
	_, req := h.registerRequest("local@example.com")
	if _, err := mainClient(t, r).Register(bg, req); err != nil {
		t.Fatalf("loopback server: %v", err)
	}
	r2 := startMain(t, "--listen", "0.0.0.0:0", "--insecure", "--db", filepath.Join(t.TempDir(), "ov.db"))
	port := r2.shown[strings.LastIndexByte(r2.shown, ':')+1:]
	c, err := api.NewClient("http://127.0.0.1:"+port, api.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, req = h.registerRequest("remote@example.com")
	_, err = c.Register(bg, req)
	wantAPIError(t, err, 403, api.CodeInviteRequired)
	if !strings.Contains(r2.stderr.String(), "registration=invite") {
		t.Errorf("the log does not say the policy:\n%s", r2.stderr.String())
	}
}

func quotaHarness(t *testing.T, q Quotas) *harness {
	t.Helper()
	h := newHarness(t, noRateLimits())
	srv, err := New(bg, Config{Store: h.db, Limits: noRateLimits(), Quotas: q, Now: h.now})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = newTestServer(t, srv)
	return h
}

func wantQuota(t *testing.T, err error, flag string) {
	t.Helper()
	ae := wantAPIError(t, err, 403, api.CodeQuotaExceeded)
	if !strings.Contains(ae.Message, flag) || !strings.HasPrefix(ae.Message, "quota exceeded: ") {
		t.Fatalf("quota message %q does not name %s", ae.Message, flag)
	}
}

// TestQuotas exceeds each per-account quota against the real server: the request past the quota
// is refused with 403 quota_exceeded, nothing of it is stored, and other accounts are unaffected.
func TestQuotas(t *testing.T) {
	t.Run("apps", func(t *testing.T) {
		h := quotaHarness(t, Quotas{Apps: 2})
		u := h.register("a@example.com")
		u.newApp("one")
		u.newApp("two")
		_, err := u.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "three"})
		wantQuota(t, err, "--quota-apps")
		if l, _ := u.c.Apps(bg); len(l.Apps) != 2 {
			t.Fatalf("%d apps stored", len(l.Apps))
		}
		h.register("b@example.com").newApp("own") // per account
	})
	t.Run("envs", func(t *testing.T) {
		h := quotaHarness(t, Quotas{Envs: 2})
		u := h.register("a@example.com")
		app := u.newApp("web")
		u.newEnv(app, "web", "prod")
		u.newEnv(u.newApp("api"), "api", "prod")
		_, err := u.c.CreateEnv(bg, hex.EncodeToString(app), &api.NewEnv{EnvID: hex.EncodeToString(rnd(16)), Name: "dev", Epoch: 1, WrappedEK: wrapped()})
		wantQuota(t, err, "--quota-envs")
	})
	t.Run("secrets", func(t *testing.T) {
		h := quotaHarness(t, Quotas{Secrets: 5})
		u := h.register("a@example.com")
		app := u.newApp("web")
		e1, e2 := u.newEnv(app, "web", "prod"), u.newEnv(app, "web", "dev")
		u.putN(e1, 3, 100)
		u.putN(e2, 2, 100)
		d := u.draft(e2).putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(100)})
		wantQuota(t, u.commit(e2, d), "--quota-secrets")
		// Replacing a secret, or deleting one, is still allowed at the quota.
		var blind []byte
		for b := range e1.records {
			blind = []byte(b)
			break
		}
		if err := u.commit(e1, u.draft(e1).putRecord(api.Record{Blind: blind, Version: 2, Record: sealed(100)})); err != nil {
			t.Fatalf("replace at the quota: %v", err)
		}
		if err := u.commit(e1, u.draft(e1).deleteRecord(blind)); err != nil {
			t.Fatalf("delete at the quota: %v", err)
		}
		u.putN(e2, 1, 100)
	})
	t.Run("bytes", func(t *testing.T) {
		h := quotaHarness(t, Quotas{Bytes: 10000})
		u := h.register("a@example.com")
		e := u.newEnv(u.newApp("web"), "web", "prod")
		u.putN(e, 4, 2000)
		d := u.draft(e).putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(2001)})
		wantQuota(t, u.commit(e, d), "--quota-bytes")
		u.putN(e, 1, 2000) // exactly at the quota
	})
	t.Run("machines", func(t *testing.T) {
		h := quotaHarness(t, Quotas{Machines: 1})
		u := h.register("a@example.com")
		e := u.newEnv(u.newApp("web"), "web", "prod")
		u.newMachine([]*env{e}, 0)
		_, req := u.machineRequest(nil, 0)
		wantQuota(t, u.c.CreateMachine(bg, req), "--quota-machines")
	})
	t.Run("devices", func(t *testing.T) {
		h := quotaHarness(t, Quotas{Devices: 2})
		u := h.register("a@example.com")
		login := func() error {
			_, _, dev := newDevice()
			_, err := h.client("").Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: append([]byte(nil), u.loginAuth[:]...), Device: dev})
			return err
		}
		if err := login(); err != nil {
			t.Fatalf("second device: %v", err)
		}
		wantQuota(t, login(), "--quota-devices")
		// Revoking a device frees its place.
		if err := u.c.RevokeDevice(bg, "self"); err != nil {
			t.Fatal(err)
		}
		if err := login(); err != nil {
			t.Fatalf("after a revocation: %v", err)
		}
	})
	t.Run("racing", func(t *testing.T) {
		// The attack: many requests at once, hoping to pass the check together.
		h := quotaHarness(t, Quotas{Apps: 3})
		u := h.register("a@example.com")
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = u.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: fmt.Sprintf("app-%d", i)})
			}()
		}
		wg.Wait()
		if l, _ := u.c.Apps(bg); len(l.Apps) != 3 {
			t.Fatalf("%d apps after 12 racing creations with a quota of 3", len(l.Apps))
		}
		if !strings.Contains(h.metricsText(), `ov_server_quota_refusals_total{quota="apps"} 9`) {
			t.Errorf("metrics do not count the refusals")
		}
	})
}

// TestQuotaFlags: the quotas are ov-server flags, and the defaults apply without them.
func TestQuotaFlags(t *testing.T) {
	o, _, err := parseFlags([]string{"--quota-apps", "7", "--quota-bytes", "0"}, io.Discard)
	if err != nil || o.quotas.Apps != 7 || o.quotas.Bytes != 0 || o.quotas.Envs != DefaultQuotas().Envs {
		t.Fatalf("parse: %v %+v", err, o.quotas)
	}
	if _, _, err := parseFlags([]string{"--quota-apps", "-1"}, io.Discard); err == nil {
		t.Fatal("a negative quota was accepted")
	}
	if _, _, err := parseFlags([]string{"--registration", "sometimes"}, io.Discard); err == nil {
		t.Fatal("an unknown registration policy was accepted")
	}
}

// TestShedding: past MaxInFlight (and the queue), a request is refused at once with 503
// overloaded and Retry-After, before it is processed; the client retries it with backoff.
func TestShedding(t *testing.T) {
	h := newHarness(t, noRateLimits())
	srv, err := New(bg, Config{Store: h.db, Limits: noRateLimits(), Overload: Overload{MaxInFlight: 1, MaxQueued: 1, QueueWait: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = newTestServer(t, srv)
	u := h.register("a@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	// Hold the only slot with a commit whose body stalls.
	body := []byte(`{"expected_seq":0`)
	pr, pw := io.Pipe()
	hreq, _ := http.NewRequest("PUT", h.ts.URL+"/v1/envs/"+hex.EncodeToString(e.envID)+"/manifest", pr)
	hreq.ContentLength = int64(len(body) + 1)
	hreq.Header.Set("Authorization", "Bearer "+u.token)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(hreq); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write(body)
	waitFor(t, "the commit to hold the slot", func() bool { return strings.Contains(h.metricsText(), "ov_server_in_flight_requests 1") })
	resp, err := http.Get(h.ts.URL + "/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), `"overloaded"`) {
		t.Fatalf("over the limit: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// /healthz is never shed.
	if resp, err := http.Get(h.ts.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz while overloaded: %v", err)
	}
	// The client backs off and gets through once the slot is free.
	got := make(chan error, 1)
	go func() {
		_, err := u.c.Apps(bg)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	pw.Write([]byte("}"))
	pw.Close()
	<-done
	if err := <-got; err != nil {
		t.Fatalf("client after backoff: %v", err)
	}
	if !strings.Contains(h.metricsText(), "ov_server_shed_total") {
		t.Fatal("no shed metric")
	}
}
