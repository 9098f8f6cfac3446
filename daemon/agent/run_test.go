// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/peercred"
)

func allTestNames() []string {
	var n []string
	for k := range testSecrets {
		n = append(n, k)
	}
	n = append(n, "KEY_FINGERPRINT")
	slices.Sort(n)
	return n
}

// RUN: the owner gets every secret (or exactly those asked) with the
// status in one request, journaled with the pidfd-verified peer like GET;
// root and other uids get nothing.
func TestRunOp(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, key: key1, socketMode: 0o666, env: []string{"OV_RATE=off"}})
	p.waitNotify(t, "READY=1")
	fp := fingerprint(t, key1)

	out := p.as(t, nobody, "run")
	if want := "ok served=true state=unlocked scope=myapp/production digest=" + wantDigest(allTestNames(), fp); !strings.HasPrefix(out, want) {
		t.Errorf("owner RUN: %q, want %q", out, want)
	}
	pid := out[strings.LastIndex(out, "pid=")+4:]
	if peercred.ProbePeerPIDFD() == nil {
		p.waitLog(t, `msg="served secrets" app=myapp env=production peer_comm=agent.test peer_exe=`+regexp.QuoteMeta(p.bin)+` peer_pid=`+pid+
			` peer_pidfd=verified peer_uid=65534 request=RUN secrets="?[A-Z_]+,[A-Z_]+,[A-Z_]+"?\n`)
	} else {
		p.waitLog(t, `msg="served secrets".* peer_pid=`+pid+` peer_pidfd=unsupported peer_uid=65534 request=RUN`)
	}
	names := []string{"STRIPE_SECRET_KEY", "KEY_FINGERPRINT"}
	if out := p.as(t, nobody, "run", "OV_NAMES="+strings.Join(names, ",")); !strings.HasPrefix(out, "ok served=true state=unlocked scope=myapp/production digest="+wantDigest(names, fp)) {
		t.Errorf("owner RUN of two names: %q", out)
	}
	if out := p.as(t, nobody, "run", "OV_NAMES=DATABASE_URL,NOPE"); !strings.HasPrefix(out, "error code=not_found") || strings.Contains(out, "postgres") {
		t.Errorf("owner RUN with a missing name: %q", out)
	}
	if out := p.as(t, nobody, "run", "OV_NAMES=bad name"); !strings.HasPrefix(out, "error code=bad_request") {
		t.Errorf("owner RUN with an invalid name: %q", out)
	}
	// Root may see the status, never values; another uid is refused before its request is read.
	if out := p.as(t, 0, "run"); !strings.HasPrefix(out, "error code=denied") {
		t.Errorf("root RUN: %q", out)
	}
	if out := p.as(t, otherUID, "run"); !strings.HasPrefix(out, "error code=denied") {
		t.Errorf("uid %d RUN: %q", otherUID, out)
	}
	for _, v := range testSecrets {
		if strings.Contains(p.logs.String(), v) {
			t.Error("a secret value is in the log")
		}
	}
}

// An agent pinned to another scope, or locked, answers RUN with its status
// and nothing else, as STATUS would: not a denial, so asking for another
// app any number of times does not lock the agent out (with GET, three
// such requests would).
func TestRunNotServed(t *testing.T) {
	p := startAgent(t, agentOpts{uid: otherUID, key: key1, env: []string{"OV_LOCKOUT_DENIALS=3", "OV_LOCKOUT_WINDOW=1m", "OV_RATE=off"}})
	p.waitNotify(t, "READY=1")
	for i := range 5 {
		if out := p.as(t, otherUID, "run", "OV_REQ_APP=otherapp"); !strings.HasPrefix(out, "ok served=false state=unlocked scope=myapp/production digest="+digest(nil)) {
			t.Fatalf("RUN %d for another app: %q", i+1, out)
		}
	}
	if st, err := p.client().Status(context.Background()); err != nil || st.State != localapi.StateUnlocked {
		t.Fatalf("after 5 RUNs for another app: %+v %v; want unlocked", st, err)
	}
	if err := p.client().Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := p.as(t, otherUID, "run"); !strings.HasPrefix(out, "ok served=false state=locked scope=myapp/production digest="+digest(nil)) {
		t.Errorf("RUN of a locked agent: %q", out)
	}
}

// One RUN is one request: the owner gets the burst (10) of RUNs, not half of it.
func TestRunRateLimit(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, key: key1})
	p.waitNotify(t, "READY=1")
	start := time.Now()
	out := p.as(t, nobody, "runburst")
	allowed := 10 + int(time.Since(start).Seconds()*0.5) + 1
	var n int
	var code string
	if _, err := fmt.Sscanf(out, "served=%d code=%s", &n, &code); err != nil || n < 10 || n > allowed || code != "rate_limited" {
		t.Errorf("owner: %q; want 10 (at most %d) RUNs served, then rate_limited", out, allowed)
	}
	p.waitLog(t, `rate limited.*peer_uid=65534 request=RUN`)
}

// The distinct-secret counter and its warning count what RUN served.
func TestRunDistinctSecretsWarning(t *testing.T) {
	p := startAgent(t, agentOpts{uid: otherUID, key: key1, env: []string{"OV_DISTINCT_SECRETS=2", "OV_RATE=off"}})
	p.waitNotify(t, "READY=1")
	if o := p.as(t, otherUID, "run", "OV_NAMES=DATABASE_URL,STRIPE_SECRET_KEY"); !strings.HasPrefix(o, "ok served=true") {
		t.Fatalf("RUN: %q", o)
	}
	const warn = "many distinct secrets read by one uid in one scope"
	if strings.Contains(p.logs.String(), warn) {
		t.Fatal("warned at 2 distinct secrets with a threshold of 2")
	}
	if o := p.as(t, otherUID, "run"); !strings.HasPrefix(o, "ok served=true") {
		t.Fatalf("RUN: %q", o)
	}
	p.waitLog(t, `level=warning msg="`+warn+`" app=myapp distinct_secrets=3 env=production .*peer_uid=4242 .*threshold=2`)
}

// An agent that does not know RUN (DisableRunForTest: the answer of an
// older agent) makes the client report ErrUnknownOp, and GET still works.
func TestRunUnknownToOlderAgent(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, key: key1, env: []string{"OV_NO_RUN=1"}})
	p.waitNotify(t, "READY=1")
	if out := p.as(t, nobody, "run"); !strings.HasPrefix(out, "unknown-op ") || !strings.Contains(out, "unknown op 9") {
		t.Errorf("RUN to an agent without it: %q", out)
	}
	if out := p.as(t, nobody, "get", "OV_NAMES=DATABASE_URL"); !strings.HasPrefix(out, "ok digest=") {
		t.Errorf("GET: %q", out)
	}
}
