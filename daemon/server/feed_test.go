// SPDX-License-Identifier: Apache-2.0

package server

import (
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/store/storeopen"
)

// The change feed's tests run two real ov-server instances, A and B, on one real database, each
// with its own pool (and, on PostgreSQL, its own listening connection), and attack B's memory:
// writes through A, by plain SQL, and on PostgreSQL with B's listener killed or stopped. They wait
// for notifications and for the feed's state with a deadline. The tests that do not touch a
// listener run on SQLite too, whose feed reads the change log when its last read is more than a
// millisecond old: there B must serve a change once that stated bound has passed.

// feedPair is two instances on one database and a client-side account with a scoped machine.
type feedPair struct {
	t      *testing.T
	dsn    string // a postgres:// DSN or a SQLite file
	sqlite bool
	a, b   *harness
	u      *user // its device client talks to A
	e      *env
	m      *machine    // its client talks to A
	mb     *api.Client // the same machine key, talking to B
	ub     *api.Client // the same device key, talking to B
	appHex string
}

// feedBackends runs test on PostgreSQL and on SQLite.
func feedBackends(t *testing.T, test func(t *testing.T, newPair func() *feedPair)) {
	t.Run("postgres", func(t *testing.T) { test(t, func() *feedPair { return newFeedPair(t, pgtest.NewDatabase(t)) }) })
	t.Run("sqlite", func(t *testing.T) {
		test(t, func() *feedPair { return newFeedPair(t, filepath.Join(t.TempDir(), "ov-server.db")) })
	})
}

func newFeedPair(t *testing.T, dsn string) *feedPair {
	p := &feedPair{t: t, dsn: dsn, sqlite: !strings.HasPrefix(dsn, "postgres")}
	p.a, p.b = p.instance(), p.instance()
	p.u = p.a.register("feed@example.com")
	app := p.u.newApp("web")
	p.appHex = hex.EncodeToString(app)
	p.e = p.u.newEnv(app, "web", "prod")
	p.u.putN(p.e, 3, 100)
	p.m = p.u.newMachine([]*env{p.e}, 0)
	p.mb = p.b.client(p.m.token)
	p.ub = p.b.client(p.u.token)
	p.waitCurrent(p.a, true)
	p.waitCurrent(p.b, true)
	return p
}

// instance is one ov-server on the pair's database.
func (p *feedPair) instance() *harness {
	db, err := storeopen.Open(bg, p.dsn)
	if err != nil {
		p.t.Fatal(err)
	}
	h := &harness{t: p.t, db: db}
	srv, err := New(bg, Config{Store: db, Limits: noRateLimits(), Now: h.now})
	if err != nil {
		p.t.Fatal(err)
	}
	if srv.feed == nil {
		p.t.Fatal("no change feed")
	}
	p.t.Cleanup(func() { srv.Close(); db.Close() })
	h.srv = srv
	h.ts = newTestServer(p.t, srv)
	return h
}

// eventually waits until cond holds, failing after a deadline.
func (p *feedPair) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *feedPair) waitCurrent(h *harness, want bool) {
	p.t.Helper()
	w := "0"
	if want {
		w = "1"
	}
	p.eventually(fmt.Sprintf("the feed to be current=%v", want), func() bool {
		return strings.Contains(h.metricsText(), "\nov_server_change_feed_current "+w+"\n")
	})
}

// metric reads one sample from h's /metrics answer (name with its labels, as printed).
func metric(h *harness, name string) float64 {
	h.t.Helper()
	for _, line := range strings.Split(h.metricsText(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				h.t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	h.t.Fatalf("no metric %s", name)
	return 0
}

func notifications(h *harness) float64 { return metric(h, "ov_server_change_feed_notifications_total") }
func flushes(h *harness) float64       { return metric(h, "ov_server_change_feed_flushes_total") }
func headHits(h *harness) float64      { return metric(h, `ov_server_env_head_total{result="hit"}`) }
func headBypasses(h *harness) float64  { return metric(h, `ov_server_env_head_total{result="bypass"}`) }

// readSeq reads the env through c and returns its seq.
func (p *feedPair) readSeq(c *api.Client) uint64 {
	p.t.Helper()
	st, err := c.Env(bg, hex.EncodeToString(p.e.envID))
	if err != nil {
		p.t.Fatalf("read env: %v", err)
	}
	return st.Seq
}

// warm reads through B until B answers the machine's pair from memory.
func (p *feedPair) warm() {
	p.t.Helper()
	for range 2 {
		if _, err := p.mb.MachineSelf(bg); err != nil {
			p.t.Fatal(err)
		}
		if got := p.readSeq(p.mb); got != p.e.seq {
			p.t.Fatalf("B serves seq %d, want %d", got, p.e.seq)
		}
	}
	before := headHits(p.b)
	p.readSeq(p.mb)
	if headHits(p.b) != before+1 {
		p.t.Fatal("B did not answer the env head from memory")
	}
}

// waitNotified waits until B has received a notification since n0 was read. On SQLite, B reads
// the change log when it last did more than a millisecond ago (sqlitestore's pollEvery): after
// that it must serve the change, so there is nothing else to wait for.
func (p *feedPair) waitNotified(n0 float64) {
	p.t.Helper()
	if p.sqlite {
		time.Sleep(2 * time.Millisecond)
		return
	}
	p.eventually("B to receive the notification", func() bool { return notifications(p.b) > n0 })
}

func wantUnknownMachine(t *testing.T, err error) {
	t.Helper()
	wantAPIError(t, err, http.StatusUnauthorized, api.CodeUnauthorized)
}

// TestFeedCommitOnAServedByB: a commit through A is what B serves once notified, and what A
// serves at once.
func TestFeedCommitOnAServedByB(t *testing.T) { feedBackends(t, testFeedCommitOnAServedByB) }

func testFeedCommitOnAServedByB(t *testing.T, newPair func() *feedPair) {
	p := newPair()
	p.warm()
	p.readSeq(p.u.c) // A's head for the device
	p.readSeq(p.u.c)
	n0 := notifications(p.b)
	p.u.putN(p.e, 1, 100)
	if got := p.readSeq(p.u.c); got != p.e.seq {
		t.Fatalf("A serves seq %d right after the commit it answered, want %d", got, p.e.seq)
	}
	p.waitNotified(n0)
	if got := p.readSeq(p.mb); got != p.e.seq {
		t.Fatalf("B serves seq %d after the notification, want %d", got, p.e.seq)
	}
	if got := p.readSeq(p.ub); got != p.e.seq {
		t.Fatalf("B serves the device seq %d after the notification, want %d", got, p.e.seq)
	}
	before := headHits(p.b)
	if got := p.readSeq(p.mb); got != p.e.seq || headHits(p.b) != before+1 {
		t.Fatalf("B serves seq %d (want %d), from memory: %v", got, p.e.seq, headHits(p.b) == before+1)
	}
}

// TestFeedRevokedMachineRefusedByB: a machine deleted through A is refused by A at once and by B
// once notified, on both of its requests.
func TestFeedRevokedMachineRefusedByB(t *testing.T) {
	feedBackends(t, testFeedRevokedMachineRefusedByB)
}

func testFeedRevokedMachineRefusedByB(t *testing.T, newPair func() *feedPair) {
	p := newPair()
	// An account-wide machine has no wraps: only its own row announces its deletion.
	wide := p.u.newMachine(nil, 0)
	wideB := p.b.client(wide.token)
	p.warm()
	for _, c := range []*api.Client{p.m.c, wide.c, wideB, wideB} {
		if _, err := c.MachineSelf(bg); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*machine{p.m, wide} {
		if err := p.u.c.RevokeMachine(bg, hex.EncodeToString(m.id[:])); err != nil {
			t.Fatal(err)
		}
		_, err := m.c.MachineSelf(bg)
		wantUnknownMachine(t, err)
	}
	_, err := p.m.c.Env(bg, hex.EncodeToString(p.e.envID))
	wantUnknownMachine(t, err)
	if p.sqlite { // within sqlitestore's pollEvery (1 ms)
		time.Sleep(2 * time.Millisecond)
		_, err = p.mb.MachineSelf(bg)
		wantUnknownMachine(t, err)
	}
	p.eventually("B to refuse the revoked machines", func() bool {
		_, err1 := p.mb.MachineSelf(bg)
		_, err2 := wideB.MachineSelf(bg)
		return err1 != nil && err2 != nil
	})
	_, err = p.mb.MachineSelf(bg)
	wantUnknownMachine(t, err)
	_, err = wideB.MachineSelf(bg)
	wantUnknownMachine(t, err)
	_, err = p.mb.Env(bg, hex.EncodeToString(p.e.envID))
	wantUnknownMachine(t, err)
}

// feedPID is the backend process B's feed listens on.
func (p *feedPair) feedPID(h *harness) uint32 {
	p.t.Helper()
	fp, ok := h.db.(interface{ FeedPID() uint32 })
	if !ok {
		p.t.Fatal("the store does not tell its feed's backend")
	}
	var pid uint32
	p.eventually("the feed's backend", func() bool { pid = fp.FeedPID(); return pid != 0 })
	return pid
}

// TestFeedListenerKilled: with B's listening backend terminated, a commit and a revocation through
// A are served correctly by B at once (from the database), and B then recovers and answers from
// memory again.
func TestFeedListenerKilled(t *testing.T) {
	p := newFeedPair(t, pgtest.NewDatabase(t))
	other := p.u.newMachine([]*env{p.e}, 0)
	otherB := p.b.client(other.token)
	p.warm()
	if _, err := otherB.MachineSelf(bg); err != nil {
		t.Fatal(err)
	}
	f0 := flushes(p.b)
	pid := p.feedPID(p.b)
	pgtest.Exec(t, p.dsn, fmt.Sprintf(`SELECT pg_terminate_backend(%d)`, pid))
	p.eventually("B to drop its memory when its listener dies", func() bool { return flushes(p.b) > f0 })
	p.u.putN(p.e, 1, 100)
	if err := p.u.c.RevokeMachine(bg, hex.EncodeToString(other.id[:])); err != nil {
		t.Fatal(err)
	}
	if got := p.readSeq(p.mb); got != p.e.seq {
		t.Fatalf("B serves seq %d with its listener killed, want %d", got, p.e.seq)
	}
	_, err := otherB.MachineSelf(bg)
	wantUnknownMachine(t, err)
	p.eventually("B to listen on a new backend", func() bool {
		n := p.b.db.(interface{ FeedPID() uint32 }).FeedPID()
		return n != 0 && n != pid
	})
	p.waitCurrent(p.b, true)
	p.warm() // from memory again, and current
	_, err = otherB.Env(bg, hex.EncodeToString(p.e.envID))
	wantUnknownMachine(t, err)
}

// TestFeedPlainSQLWrite: writes made with SQL on the database, through no ov-server, reach B's
// memory through the triggers: a commit-like update of the env, a new machine wrap, a new signed
// allowed set, a deleted machine.
func TestFeedPlainSQLWrite(t *testing.T) { feedBackends(t, testFeedPlainSQLWrite) }

func testFeedPlainSQLWrite(t *testing.T, newPair func() *feedPair) {
	p := newPair()
	p.warm()
	envHex := hex.EncodeToString(p.e.envID)
	mHex := hex.EncodeToString(p.m.id[:])
	// lit is a bytes literal, now a time, in the database's own SQL.
	lit, now := func(h string) string { return "decode('" + h + "', 'hex')" }, "now()"
	if p.sqlite {
		lit, now = func(h string) string { return "X'" + h + "'" }, strconv.FormatInt(time.Now().UnixMicro(), 10)
	}

	n0 := notifications(p.b)
	p.sql(fmt.Sprintf(`UPDATE envs SET seq = seq + 100 WHERE id = %s`, lit(envHex)))
	p.waitNotified(n0)
	if got := p.readSeq(p.mb); got != p.e.seq+100 {
		t.Fatalf("B serves seq %d after an SQL update, want %d", got, p.e.seq+100)
	}

	n0 = notifications(p.b)
	p.sql(fmt.Sprintf(`UPDATE apps SET name = 'renamed' WHERE id = %s`, lit(p.appHex)))
	p.waitNotified(n0)
	if st, err := p.mb.Env(bg, envHex); err != nil || st.AppName != "renamed" {
		t.Fatalf("B serves a stale app name after an SQL update (err %v)", err)
	}

	wrap := machineWrap()
	n0 = notifications(p.b)
	p.sql(fmt.Sprintf(`UPDATE machine_wraps SET wrap = %s WHERE machine_id = %s`, lit(hex.EncodeToString(wrap)), lit(mHex)))
	p.waitNotified(n0)
	st, err := p.mb.Env(bg, envHex)
	if err != nil || !sameBytes(st.MachineWrap, wrap) {
		t.Fatalf("B serves a stale machine wrap after an SQL update (err %v)", err)
	}

	access := rnd(40)
	n0 = notifications(p.b)
	p.sql(fmt.Sprintf(`INSERT INTO signed_objects (account_id, kind, key, version, raw, sig, updated_at)
		VALUES (%s, '%s', '%s', 1, %s, %s, %s)`,
		lit(hex.EncodeToString(p.u.accountID)), store.EnvAccessKind, store.EnvAccessKey(p.e.envID, p.e.epoch),
		lit(hex.EncodeToString(access)), lit(hex.EncodeToString(rnd(64))), now))
	p.waitNotified(n0)
	if st, err = p.mb.Env(bg, envHex); err != nil || !sameBytes(st.Access, access) {
		t.Fatalf("B serves a stale allowed set after an SQL insert (err %v)", err)
	}

	n0 = notifications(p.b)
	p.sql(fmt.Sprintf(`DELETE FROM machines WHERE id = %s`, lit(mHex)))
	p.waitNotified(n0)
	_, err = p.mb.MachineSelf(bg)
	wantUnknownMachine(t, err)
	_, err = p.mb.Env(bg, envHex)
	wantUnknownMachine(t, err)
}

// sql runs statements on the pair's database through a connection of its own (no ov-server).
func (p *feedPair) sql(stmts string) {
	p.t.Helper()
	if !p.sqlite {
		pgtest.Exec(p.t, p.dsn, stmts)
		return
	}
	db, err := sql.Open("sqlite", "file:"+p.dsn+"?_pragma=busy_timeout(10000)")
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(bg, stmts); err != nil {
		p.t.Fatalf("%s: %v", stmts, err)
	}
}

// TestFeedHeartbeatStall: with B's listening backend stopped (SIGSTOP), notifications and
// heartbeats stop reaching B; within the feed's bound B stops trusting memory and answers a commit
// made through A correctly, then recovers once the backend runs again.
func TestFeedHeartbeatStall(t *testing.T) {
	p := newFeedPair(t, pgtest.NewDatabase(t))
	p.warm()
	pid := int(p.feedPID(p.b))
	switch err := syscall.Kill(pid, syscall.SIGSTOP); {
	case errors.Is(err, syscall.EPERM):
		t.Skipf("skipped: cannot stop the PostgreSQL backend %d (not root, uid %d): %v", pid, os.Getuid(), err)
	case err != nil:
		t.Fatal(err)
	}
	resume := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(resume) // before the database is dropped
	f0 := flushes(p.b)
	stopped := time.Now()
	p.waitCurrent(p.b, false)
	t.Logf("B stopped trusting memory %v after its backend stopped (bound %v + heartbeat %v)", time.Since(stopped), store.FeedBound, heartbeatEveryForLog)
	p.eventually("B to drop its memory", func() bool { return flushes(p.b) > f0 })

	b0 := headBypasses(p.b)
	p.u.putN(p.e, 1, 100)
	if got := p.readSeq(p.mb); got != p.e.seq {
		t.Fatalf("B serves seq %d with its feed stalled, want %d", got, p.e.seq)
	}
	if headBypasses(p.b) <= b0 {
		t.Fatal("B did not ask the database with its feed stalled")
	}
	resume()
	p.waitCurrent(p.b, true)
	p.warm()
}

// heartbeatEveryForLog is pgstore's heartbeat period, for the log line above.
const heartbeatEveryForLog = 250 * time.Millisecond
