// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// TestEnvCacheAcrossInstances: two servers share one database; each caches what it reads. A commit
// through one is seen at once by the other, for devices and for a scoped machine, including a key
// rotation that changes the machine's wrap.
func TestEnvCacheAcrossInstances(t *testing.T) {
	h := newHarness(t, noRateLimits())
	other, err := New(bg, Config{Store: h.db, Limits: noRateLimits()})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServer(t, other)
	u := h.register("a@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, 5, 100)
	m := u.newMachine([]*env{e}, 0)
	id := hex.EncodeToString(e.envID)
	c2, _ := api.NewClient(ts2.URL, api.ClientOptions{Token: m.token})
	d2, _ := api.NewClient(ts2.URL, api.ClientOptions{Token: u.token})

	read := func(c *api.Client) *api.EnvState {
		t.Helper()
		st, err := c.Env(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Warm both caches, twice (the second read is a hit).
	for range 2 {
		read(c2)
		read(d2)
	}
	if !strings.Contains((&harness{t: t, srv: other}).metricsText(), `ov_server_env_cache_total{result="hit"}`) {
		t.Fatal("no cache hit on repeated reads")
	}
	// Commit through the first server; the second must not answer its cached copy.
	u.putN(e, 1, 100)
	if st := read(c2); st.Seq != e.seq || len(st.Records) != 6 {
		t.Fatalf("machine read after a commit elsewhere: seq %d, %d records; want %d, 6", st.Seq, len(st.Records), e.seq)
	}
	if st := read(d2); st.Seq != e.seq || len(st.Records) != 6 || st.WrappedEK == nil || st.MachineWrap != nil {
		t.Fatalf("device read after a commit elsewhere: %+v", st)
	}
	// A rotation that re-wraps for the machine: the new wrap, not the cached epoch's.
	newWrap := machineWrap()
	d := u.draft(e)
	d.epoch = e.epoch + 1
	d.rotate = &api.Rotation{Epoch: d.epoch, WrappedEK: wrapped(), MachineWraps: []api.MachineWrap{{
		MachineID: hex.EncodeToString(m.id[:]), AppID: hex.EncodeToString(e.appID), EnvID: id, Epoch: d.epoch, Wrap: newWrap}}}
	d.entries = map[string]envelope.ManifestEntry{}
	d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(80)})
	if err := u.commit(e, d); err != nil {
		t.Fatal(err)
	}
	st := read(c2)
	if st.Epoch != d.epoch || !sameBytes(st.MachineWrap, newWrap) || len(st.Records) != 1 {
		t.Fatalf("machine read after a rotation elsewhere: epoch %d, %d records", st.Epoch, len(st.Records))
	}
	// Cached and uncached answers are the same JSON as encoding/json gives.
	v, err := h.db.ReadEnv(bg, e.envID, store.ReadOptions{Records: store.RecordsFull, MachineID: m.id[:]})
	if err != nil {
		t.Fatal(err)
	}
	want := api.EnvState{AppID: hex.EncodeToString(e.appID), AppName: "web", EnvID: id, EnvName: "prod", Epoch: v.Env.Epoch,
		MachineWrap: v.MachineWrap, Seq: v.Env.Seq, Manifest: v.Env.Manifest, ManifestSig: v.Env.ManifestSig, UpdatedAt: v.Env.UpdatedAt}
	for _, r := range v.Records {
		want.Records = append(want.Records, api.Record{Blind: r.Blind, Version: r.Version, Record: r.Data})
	}
	got := read(c2) // a hit now
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !reflect.DeepEqual(wb, gb) {
		t.Fatalf("cached answer differs:\n%s\n%s", gb, wb)
	}
	// A revoked machine is refused even though its env is cached.
	if err := u.c.RevokeMachine(bg, hex.EncodeToString(m.id[:])); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Env(bg, id)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	_, err = c2.MachineSelf(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
}

// TestMachineCacheRevocation: an account-wide machine, cached by a second instance on its grant
// and its reads, is refused there as soon as it is revoked through the first.
func TestMachineCacheRevocation(t *testing.T) {
	h := newHarness(t, noRateLimits())
	other, err := New(bg, Config{Store: h.db, Limits: noRateLimits()})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServer(t, other)
	u := h.register("a@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, 2, 100)
	m := u.newMachine(nil, 0) // account-wide
	c2, _ := api.NewClient(ts2.URL, api.ClientOptions{Token: m.token})
	id := hex.EncodeToString(e.envID)
	for range 3 {
		if _, err := c2.MachineSelf(bg); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.Env(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong secret with the machine's id is refused although the id is cached.
	var other32 [32]byte
	copy(other32[:], rnd(32))
	cb, _ := api.NewClient(ts2.URL, api.ClientOptions{Token: string(envelope.FormatMachineToken(m.id, &other32))})
	_, err = cb.Env(bg, id)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	_, err = cb.MachineSelf(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	if err := u.c.RevokeMachine(bg, hex.EncodeToString(m.id[:])); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Env(bg, id)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	_, err = c2.MachineSelf(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
}

// TestAuditBatched: reads are audited without a write each, and every entry is in the database
// once the server closes; the audit listing sees this instance's queued entries.
func TestAuditBatched(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("a@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, 3, 100)
	m := u.newMachine([]*env{e}, 0)
	for range 50 {
		if _, err := m.c.Env(bg, hex.EncodeToString(e.envID)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := u.c.Audit(bg, 1000)
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, en := range l.Entries {
		if en.Action == "env.read" && strings.HasPrefix(en.Actor, "machine:") && en.Result == "ok" {
			reads++
		}
	}
	if reads != 50 {
		t.Fatalf("%d env.read entries, want 50", reads)
	}
	for range 20 {
		m.c.Env(bg, hex.EncodeToString(e.envID))
	}
	h.srv.Close()
	list, err := h.db.Audit(bg, u.accountID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	reads = 0
	for _, en := range list {
		if en.Action == "env.read" {
			reads++
		}
	}
	if reads != 70 {
		t.Fatalf("after Close: %d env.read entries, want 70", reads)
	}
}
