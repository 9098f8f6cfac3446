// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// testHistory: every commit's manifest is kept with its writer, past sealed records stay readable
// by hash, a stale commit leaves no trace in the history, rotations keep every epoch's wrap, and
// pruning keeps the newest versions only.
func testHistory(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	blind, other := rnd(16), rnd(16)
	var puts []store.Record
	var manifests [][]byte
	for i := uint64(1); i <= 3; i++ {
		r := rec(blind, i, 20)
		puts = append(puts, r)
		m := rnd(30)
		manifests = append(manifests, m)
		c := &store.Commit{EnvID: env.ID, ExpectedSeq: i - 1, Seq: i, Manifest: m, ManifestSig: rnd(64),
			Put: []store.Record{r}, Actor: "device:0" + string(rune('0'+i)), At: now.Add(time.Duration(i) * time.Second)}
		if i == 2 {
			c.Put = append(c.Put, rec(other, 1, 10))
		}
		must(t, s.CommitEnv(ctx, c), "commit")
	}
	wantErr(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 1, Seq: 2, Manifest: rnd(30), ManifestSig: rnd(64),
		Put: []store.Record{rec(blind, 9, 20)}, Actor: "device:stale", At: now}), store.ErrConflict, "stale commit")
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 3, Seq: 4, Manifest: rnd(30), ManifestSig: rnd(64),
		Delete: [][]byte{other}, Actor: "machine:aa", At: now.Add(4 * time.Second)}), "delete")

	h, err := s.EnvHistory(ctx, env.ID)
	must(t, err, "env history")
	if !bytes.Equal(h.AccountID, a.ID) {
		t.Fatalf("history account %x, want %x", h.AccountID, a.ID)
	}
	if len(h.Manifests) != 4 {
		t.Fatalf("%d manifests in the history, want 4", len(h.Manifests))
	}
	for i, m := range h.Manifests {
		if m.Seq != uint64(i+1) {
			t.Fatalf("manifest %d has seq %d", i, m.Seq)
		}
		if i < 3 && (!bytes.Equal(m.Manifest, manifests[i]) || m.Actor != "device:0"+string(rune('1'+i))) {
			t.Fatalf("manifest seq %d: actor %q or bytes differ", m.Seq, m.Actor)
		}
		if !m.At.Equal(now.Add(time.Duration(i+1) * time.Second)) {
			t.Fatalf("manifest seq %d at %v", m.Seq, m.At)
		}
	}
	if h.Manifests[3].Actor != "machine:aa" {
		t.Fatalf("actor of seq 4: %q", h.Manifests[3].Actor)
	}
	if len(h.Keys) != 1 || h.Keys[0].Epoch != 1 || !bytes.Equal(h.Keys[0].WrappedEK, env.WrappedEK) {
		t.Fatalf("epoch keys: %+v", h.Keys)
	}

	hashes := [][]byte{rnd(32)} // unknown: left out
	for _, r := range puts {
		sum := sha256.Sum256(r.Data)
		hashes = append(hashes, sum[:])
	}
	got, err := s.HistoryRecords(ctx, env.ID, hashes)
	must(t, err, "history records")
	if len(got) != 3 {
		t.Fatalf("%d history records, want 3", len(got))
	}
	for _, g := range got {
		if !bytes.Equal(g.Blind, blind) || g.Version < 1 || g.Version > 3 || !bytes.Equal(g.Data, puts[g.Version-1].Data) {
			t.Fatalf("history record version %d differs from what was written", g.Version)
		}
		if sum := sha256.Sum256(g.Data); !bytes.Equal(sum[:], g.Hash) || g.Size != len(g.Data) {
			t.Fatalf("history record version %d: hash or size wrong", g.Version)
		}
	}
	// Another environment's records are not reachable through this one.
	env2 := mkEnv(t, s, mkApp(t, s, a.ID, "api"), "prod")
	if got, err := s.HistoryRecords(ctx, env2.ID, hashes); err != nil || len(got) != 0 {
		t.Fatalf("history records of another env: %d, %v", len(got), err)
	}
	if _, err := s.EnvHistory(ctx, rnd(16)); err == nil {
		t.Fatal("history of a missing env: no error")
	} else {
		wantErr(t, err, store.ErrNotFound, "history of a missing env")
	}

	// Rotation adds the new epoch's wrap; the history keeps both.
	wrap2 := rnd(74)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 4, Seq: 5, Manifest: rnd(30), ManifestSig: rnd(64),
		Put: []store.Record{rec(blind, 3, 20)}, Rotate: &store.Rotation{Epoch: 2, WrappedEK: wrap2}, Actor: "device:01", At: now}), "rotate")
	h, err = s.EnvHistory(ctx, env.ID)
	must(t, err, "env history")
	if len(h.Keys) != 2 || h.Keys[1].Epoch != 2 || !bytes.Equal(h.Keys[1].WrappedEK, wrap2) || len(h.Manifests) != 5 {
		t.Fatalf("after rotation: %d keys, %d manifests", len(h.Keys), len(h.Manifests))
	}

	// Pruning to 2 versions drops versions 1 and 2 of blind, keeps 3 (both epochs' records) and 4.
	v4 := rec(blind, 4, 20)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 5, Seq: 6, Manifest: rnd(30), ManifestSig: rnd(64),
		Put: []store.Record{v4}, KeepVersions: 2, Actor: "device:01", At: now}), "commit with pruning")
	sum4 := sha256.Sum256(v4.Data)
	got, err = s.HistoryRecords(ctx, env.ID, append(hashes, sum4[:]))
	must(t, err, "history records")
	versions := map[uint64]int{}
	for _, g := range got {
		versions[g.Version]++
	}
	if versions[1] != 0 || versions[2] != 0 || versions[3] != 1 || versions[4] != 1 {
		t.Fatalf("after pruning to 2 versions: %v", versions)
	}
	// The current record is never pruned, even with KeepVersions 1.
	v5 := rec(blind, 5, 20)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 6, Seq: 7, Manifest: rnd(30), ManifestSig: rnd(64),
		Put: []store.Record{v5}, KeepVersions: 1, Actor: "device:01", At: now}), "commit with pruning")
	sum5 := sha256.Sum256(v5.Data)
	got, err = s.HistoryRecords(ctx, env.ID, [][]byte{sum4[:], sum5[:]})
	must(t, err, "history records")
	if len(got) != 1 || got[0].Version != 5 {
		t.Fatalf("after pruning to 1 version: %d records", len(got))
	}
	if h, _ := s.EnvHistory(ctx, env.ID); len(h.Manifests) != 7 {
		t.Fatalf("pruning records removed manifests: %d left", len(h.Manifests))
	}
}

// testAuditPage: pages newest first, filters by time and target, and never crosses accounts.
func testAuditPage(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	for i := 0; i < 6; i++ {
		target := "env:aa"
		if i%2 == 1 {
			target = "env:bb"
		}
		must(t, s.AppendAudit(ctx, &store.AuditEntry{AccountID: a.ID, Time: now.Add(time.Duration(i) * time.Hour), Actor: "device:01",
			Action: "env.read", Target: target, RemoteAddr: "127.0.0.1", Result: "ok"}), "append")
	}
	must(t, s.AppendAudit(ctx, &store.AuditEntry{AccountID: b.ID, Time: now.Add(time.Hour), Actor: "device:02",
		Action: "env.read", Target: "env:aa", RemoteAddr: "127.0.0.1", Result: "ok"}), "append")
	p1, err := s.AuditPage(ctx, store.AuditQuery{AccountID: a.ID, Limit: 4})
	must(t, err, "page 1")
	if len(p1) != 4 || !p1[0].Time.Equal(now.Add(5*time.Hour)) {
		t.Fatalf("page 1: %d entries", len(p1))
	}
	p2, err := s.AuditPage(ctx, store.AuditQuery{AccountID: a.ID, Limit: 4, BeforeID: p1[3].ID})
	must(t, err, "page 2")
	if len(p2) != 2 || p2[0].ID >= p1[3].ID || !p2[1].Time.Equal(now) {
		t.Fatalf("page 2: %d entries", len(p2))
	}
	since, err := s.AuditPage(ctx, store.AuditQuery{AccountID: a.ID, Limit: 10, Since: now.Add(3 * time.Hour)})
	must(t, err, "since")
	if len(since) != 3 {
		t.Fatalf("since: %d entries, want 3", len(since))
	}
	tg, err := s.AuditPage(ctx, store.AuditQuery{AccountID: a.ID, Limit: 10, Target: "env:bb"})
	must(t, err, "target")
	if len(tg) != 3 {
		t.Fatalf("target: %d entries, want 3", len(tg))
	}
	for _, e := range append(append(p1, p2...), tg...) {
		if !bytes.Equal(e.AccountID, a.ID) {
			t.Fatal("another account's entry in the page")
		}
	}
}

// SeedForUpgrade writes two versions of one secret to a new environment, for a backend's upgrade
// test: the backend then removes its history tables as a database from before them lacks them,
// reopens, and calls CheckUpgraded.
func SeedForUpgrade(t *testing.T, s store.Store) (envID, manifest []byte, current store.Record) {
	t.Helper()
	a, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	blind := rnd(16)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(30), ManifestSig: rnd(64),
		Put: []store.Record{rec(blind, 1, 20)}, At: now}), "commit 1")
	manifest, current = rnd(30), rec(blind, 2, 20)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 1, Seq: 2, Manifest: manifest, ManifestSig: rnd(64),
		Put: []store.Record{current}, At: now.Add(time.Second)}), "commit 2")
	return env.ID, manifest, current
}

// CheckUpgraded checks that an upgraded database starts each environment's history at the manifest
// and records it held, and that history is kept from then on.
func CheckUpgraded(t *testing.T, s store.Store, envID, manifest []byte, current store.Record) {
	t.Helper()
	h, err := s.EnvHistory(ctx, envID)
	must(t, err, "env history")
	if len(h.Manifests) != 1 || h.Manifests[0].Seq != 2 || !bytes.Equal(h.Manifests[0].Manifest, manifest) || h.Manifests[0].Actor != "" {
		t.Fatalf("upgraded history: %+v", h.Manifests)
	}
	sum := sha256.Sum256(current.Data)
	got, err := s.HistoryRecords(ctx, envID, [][]byte{sum[:]})
	must(t, err, "history records")
	if len(got) != 1 || !bytes.Equal(got[0].Data, current.Data) {
		t.Fatal("the current record was not copied into the history")
	}
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: envID, ExpectedSeq: 2, Seq: 3, Manifest: rnd(30), ManifestSig: rnd(64),
		Put: []store.Record{rec(current.Blind, 3, 20)}, Actor: "device:01", At: now}), "commit after upgrade")
	if h, _ := s.EnvHistory(ctx, envID); len(h.Manifests) != 2 || h.Manifests[1].Actor != "device:01" {
		t.Fatal("history not kept after the upgrade")
	}
}
