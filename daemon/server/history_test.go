// SPDX-License-Identifier: Apache-2.0

package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
)

// chained signs d's manifest chained to prevRaw (nil: the first).
func (d *draft) chained(prevRaw []byte) *draft {
	m, err := envelope.ParseManifest(d.manifest())
	if err != nil {
		panic(err)
	}
	m.Prev = make([]byte, sha256.Size)
	if prevRaw != nil {
		h := sha256.Sum256(prevRaw)
		m.Prev = h[:]
	}
	d.manifestOverride = m.Marshal()
	return d
}

func TestHistoryEndpoints(t *testing.T) {
	h := newHarness(t, noRateLimits())
	alice, bob := h.register("alice@example.com"), h.register("bob@example.com")
	app := alice.newApp("web")
	e := alice.newEnv(app, "web", "prod")
	eid := hex.EncodeToString(e.envID)
	blind := rnd(16)

	// seq 1 unchained (as an older client writes), seq 2 and 3 chained.
	d1 := alice.draft(e).putRecord(api.Record{Blind: blind, Version: 1, Record: sealed(60)})
	d1.manifestOverride = d1.manifest() // build and commit send the same bytes
	c1 := d1.build()
	if err := alice.commit(e, d1); err != nil {
		t.Fatal(err)
	}
	d2 := alice.draft(e).putRecord(api.Record{Blind: blind, Version: 2, Record: sealed(60)}).chained(c1.Manifest)
	c2 := d2.build()
	if err := alice.commit(e, d2); err != nil {
		t.Fatal(err)
	}
	// A chained manifest that names another predecessor, and an unchained one after a chained one,
	// are refused: the history an honest server keeps always verifies.
	bad := alice.draft(e).putRecord(api.Record{Blind: blind, Version: 3, Record: sealed(60)}).chained(c1.Manifest)
	_, err := alice.c.Commit(bg, eid, bad.build())
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	down := alice.draft(e).putRecord(api.Record{Blind: blind, Version: 3, Record: sealed(60)})
	_, err = alice.c.Commit(bg, eid, down.build())
	ae := wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	if !strings.Contains(ae.Message, "unchained") {
		t.Fatalf("unchained after chained: %q", ae.Message)
	}
	d3 := alice.draft(e).putRecord(api.Record{Blind: blind, Version: 3, Record: sealed(60)}).chained(c2.Manifest)
	if err := alice.commit(e, d3); err != nil {
		t.Fatal(err)
	}

	hist, err := alice.c.EnvHistory(bg, eid)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Manifests) != 3 || len(hist.Keys) != 1 || hist.Keys[0].Epoch != 1 {
		t.Fatalf("history: %d manifests, %d keys", len(hist.Manifests), len(hist.Keys))
	}
	for i, m := range hist.Manifests {
		if m.Seq != uint64(i+1) || m.Actor != "device:"+hex.EncodeToString(alice.keyID[:]) || time.Since(m.At) > time.Hour {
			t.Fatalf("manifest %d: seq %d actor %q", i, m.Seq, m.Actor)
		}
	}
	if !sameBytes(hist.Manifests[0].Manifest, c1.Manifest) || !sameBytes(hist.Manifests[1].ManifestSig, c2.ManifestSig) {
		t.Fatal("the history does not hold the manifests as signed")
	}
	h1 := sha256.Sum256(c1.Put[0].Record)
	h2 := sha256.Sum256(c2.Put[0].Record)
	recs, err := alice.c.HistoryRecords(bg, eid, [][]byte{h1[:], h2[:], rnd(32)})
	if err != nil || len(recs.Records) != 2 {
		t.Fatalf("history records: %v, %v", recs, err)
	}
	_, err = alice.c.HistoryRecords(bg, eid, [][]byte{rnd(31)})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)

	// Another account reaches none of it, and its audit trail holds none of alice's entries.
	_, err = bob.c.EnvHistory(bg, eid)
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	_, err = bob.c.HistoryRecords(bg, eid, [][]byte{h1[:]})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	list, err := bob.c.AuditPage(bg, api.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range list.Entries {
		// Bob sees his own refused attempts on alice's env, never alice's own entries.
		if en.Actor != "device:"+hex.EncodeToString(bob.keyID[:]) || strings.Contains(en.Target, eid) && en.Result == "ok" {
			t.Fatalf("bob sees an entry that is not his: %+v", en)
		}
	}

	// Alice's trail: paged, by target, since.
	all, err := alice.c.AuditPage(bg, api.AuditQuery{Limit: 1000, Target: "env:" + eid})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, en := range all.Entries {
		if en.Target != "env:"+eid {
			t.Fatalf("target filter let %q through", en.Target)
		}
		actions[en.Action+" "+en.Result]++
	}
	if actions["env.commit ok"] != 3 || actions["env.history ok"] != 1 || actions["env.history.read ok"] != 1 || actions["env.commit bad_request"] != 2 {
		t.Fatalf("audit of the env: %v", actions)
	}
	p1, err := alice.c.AuditPage(bg, api.AuditQuery{Limit: 2})
	if err != nil || len(p1.Entries) != 2 {
		t.Fatalf("page 1: %v", err)
	}
	p2, err := alice.c.AuditPage(bg, api.AuditQuery{Limit: 2, BeforeID: p1.Entries[1].ID})
	if err != nil || len(p2.Entries) != 2 || p2.Entries[0].ID >= p1.Entries[1].ID {
		t.Fatalf("page 2: %v", err)
	}
	if fut, err := alice.c.AuditPage(bg, api.AuditQuery{Limit: 10, Since: time.Now().Add(time.Hour)}); err != nil || len(fut.Entries) != 0 {
		t.Fatalf("since the future: %d entries, %v", len(fut.Entries), err)
	}
}

// TestHistoryRecordsBudget: an answer carries at most MaxEnvBytes of records (at least one) and
// names the rest as omitted; the client asks again.
func TestHistoryRecordsBudget(t *testing.T) {
	lim := noRateLimits()
	lim.MaxEnvBytes = int64(lim.MaxRecordBytes) // one big record per answer
	h := newHarness(t, lim)
	u := h.register("alice@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	var hashes [][]byte
	blind := rnd(16)
	for i := range 3 {
		// Versions of one secret: the environment holds one record, the history three.
		r := api.Record{Blind: blind, Version: uint64(i + 1), Record: sealed(lim.MaxRecordBytes * 2 / 3)}
		if err := u.commit(e, u.draft(e).putRecord(r)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(r.Record)
		hashes = append(hashes, sum[:])
	}
	got, err := u.c.HistoryRecords(bg, hex.EncodeToString(e.envID), hashes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 1 || len(got.Omitted) != 2 {
		t.Fatalf("%d records, %d omitted; want 1 and 2", len(got.Records), len(got.Omitted))
	}
	again, err := u.c.HistoryRecords(bg, hex.EncodeToString(e.envID), got.Omitted)
	if err != nil || len(again.Records) != 1 || len(again.Omitted) != 1 {
		t.Fatalf("second answer: %v", err)
	}
	tooMany := make([][]byte, api.MaxHistoryHashes+1)
	for i := range tooMany {
		tooMany[i] = rnd(32)
	}
	_, err = u.c.HistoryRecords(bg, hex.EncodeToString(e.envID), tooMany)
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
}
