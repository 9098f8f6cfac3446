// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/store/storeopen"
)

// rawWatch GETs the watch endpoint and returns the status.
func rawWatch(t *testing.T, base, token string, e *env, query string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/envs/"+hex.EncodeToString(e.envID)+"/watch?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type watchResult struct {
	seq     uint64
	changed bool
	err     error
}

func watchAsync(c *api.Client, e *env, after uint64) chan watchResult {
	ch := make(chan watchResult, 1)
	go func() {
		seq, changed, err := c.WatchEnv(bg, hex.EncodeToString(e.envID), after)
		ch <- watchResult{seq, changed, err}
	}()
	return ch
}

func TestWatchEnv(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("op@example.com")
	app := u.newApp("myapp")
	prod := u.newEnv(app, "myapp", "production")
	staging := u.newEnv(app, "myapp", "staging")
	u.putN(prod, 1, 64)
	u.putN(staging, 1, 64)
	m := u.newMachine([]*env{prod}, uint64(time.Now().Add(time.Hour).Unix()))

	// Behind already: answered at once.
	if seq, changed, err := m.c.WatchEnv(bg, hex.EncodeToString(prod.envID), 0); err != nil || !changed || seq != 1 {
		t.Fatalf("watch after 0: %d %v %v", seq, changed, err)
	}
	// Waiting, then a commit: answered with the new seq, to the machine and to the device.
	mw, dw := watchAsync(m.c, prod, 1), watchAsync(u.c, prod, 1)
	time.Sleep(300 * time.Millisecond)
	select {
	case r := <-mw:
		t.Fatalf("answered before any commit: %+v", r)
	default:
	}
	u.putN(prod, 1, 64)
	for _, ch := range []chan watchResult{mw, dw} {
		select {
		case r := <-ch:
			if r.err != nil || !r.changed || r.seq != 2 {
				t.Fatalf("watch: %+v", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer after the commit")
		}
	}
	// No commit within wait: 204.
	if s := rawWatch(t, h.ts.URL, m.token, prod, "after=2&wait=1"); s != http.StatusNoContent {
		t.Fatalf("idle watch: %d", s)
	}
	// Authorized like the env read.
	for name, tc := range map[string]struct {
		token, query string
		e            *env
		want         int
	}{
		"machine outside its scope": {m.token, "after=0", staging, http.StatusForbidden},
		"another account":           {h.register("other@example.com").token, "after=0", prod, http.StatusNotFound},
		"no credential":             {"", "after=0", prod, http.StatusUnauthorized},
		"no after":                  {u.token, "", prod, http.StatusBadRequest},
		"wait too long":             {u.token, "after=0&wait=3600", prod, http.StatusBadRequest},
	} {
		if s := rawWatch(t, h.ts.URL, tc.token, tc.e, tc.query); s != tc.want {
			t.Errorf("%s: %d, want %d", name, s, tc.want)
		}
	}
	// A revoked machine is refused while it waits.
	w := watchAsync(m.c, prod, 2)
	time.Sleep(200 * time.Millisecond)
	if err := u.c.RevokeMachine(bg, hex.EncodeToString(m.id[:])); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w:
		if r.err == nil {
			t.Fatalf("revoked machine still watching: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("revoked machine still waiting")
	}
}

// Several servers on one database: a commit through one wakes a watch waiting on another.
func TestWatchAcrossServers(t *testing.T) {
	path := testDB(t)
	db1, err := storeopen.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db1.Close() })
	db2, err := storeopen.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	h := &harness{t: t, db: db1}
	if h.srv, err = New(bg, Config{Store: db1, Limits: noRateLimits()}); err != nil {
		t.Fatal(err)
	}
	h.ts = newTestServer(t, h.srv)
	srv2, err := New(bg, Config{Store: db2, Limits: noRateLimits()})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServer(t, srv2)

	u := h.register("op@example.com")
	prod := u.newEnv(u.newApp("myapp"), "myapp", "production")
	u.putN(prod, 1, 64)
	c2, err := api.NewClient(ts2.URL, api.ClientOptions{Token: u.token})
	if err != nil {
		t.Fatal(err)
	}
	w := watchAsync(c2, prod, 1)
	time.Sleep(200 * time.Millisecond)
	u.putN(prod, 1, 64) // through the first server
	select {
	case r := <-w:
		if r.err != nil || !r.changed || r.seq != 2 {
			t.Fatalf("watch on the second server: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second server never saw the commit")
	}

	// A shutdown answers waiting watches at once.
	done := make(chan int, 1)
	go func() { done <- rawWatch(t, ts2.URL, u.token, prod, "after=2&wait=60") }()
	time.Sleep(200 * time.Millisecond)
	srv2.StopWatches()
	select {
	case s := <-done:
		if s != http.StatusNoContent {
			t.Fatalf("watch at shutdown: %d", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting watch held the shutdown")
	}
}

// BenchmarkWatchPoll is what one waiting watch costs the database each WatchPoll: one env head read
// (of an env of 1,000 records, like BenchmarkGetEnv1000, its baseline).
func BenchmarkWatchPoll(b *testing.B) {
	h := newHarness(b, noRateLimits())
	u := h.register("bench@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, benchRecords, benchRecordSize)
	b.ResetTimer()
	for range b.N {
		head, err := h.db.EnvHead(bg, e.envID, nil, nil)
		if err != nil || head.Seq != 1 {
			b.Fatal(head, err)
		}
	}
}

// BenchmarkWatchAnswered is a whole watch request answered at once (the env is already past after).
func BenchmarkWatchAnswered(b *testing.B) {
	h := newHarness(b, noRateLimits())
	u := h.register("bench@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, benchRecords, benchRecordSize)
	id := hex.EncodeToString(e.envID)
	b.ResetTimer()
	for range b.N {
		if seq, ok, err := u.c.WatchEnv(bg, id, 0); err != nil || !ok || seq != 1 {
			b.Fatal(seq, ok, err)
		}
	}
}
