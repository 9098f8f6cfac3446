// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/api"
)

// historyFixture writes A three times and B once: seqs 1–4.
func historyFixture(t *testing.T) (*fixture, *Vault) {
	t.Helper()
	f := newFixture(t)
	v := f.vault()
	for _, val := range []string{"one", "two", "three"} {
		if _, err := v.Write(bg, "myapp", "prod", true, set("A", val)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Write(bg, "myapp", "prod", false, set("B", "bee")); err != nil {
		t.Fatal(err)
	}
	return f, v
}

func TestHistoryVersionsAndWriters(t *testing.T) {
	f, v := historyFixture(t)
	h, err := v.History(bg, "myapp", "prod")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Wipe()
	a := h.Of("A")
	if len(a) != 3 {
		t.Fatalf("A has %d versions, want 3", len(a))
	}
	fps := map[string]bool{}
	for i, sv := range a {
		if sv.Version != uint64(i+1) || sv.Seq != uint64(i+1) || sv.Actor != "device:"+f.dev.Wire.KeyID {
			t.Fatalf("A version %d: %+v", i+1, sv)
		}
		if string(sv.Value) != []string{"one", "two", "three"}[i] || len(sv.Fingerprint) != 16 {
			t.Fatalf("A version %d: wrong value or fingerprint", i+1)
		}
		fps[sv.Fingerprint] = true
	}
	if len(fps) != 3 {
		t.Fatal("three different values share a fingerprint")
	}
	if len(h.Manifests) != 4 || strings.Join(h.Manifests[3].Added, ",") != "B" || strings.Join(h.Manifests[1].Changed, ",") != "A" || !h.Manifests[3].Chained {
		t.Fatalf("manifest changes: %+v", h.Manifests)
	}

	// Rolling A back to version 1 writes it as version 4; history never rewinds.
	res, err := v.RollbackSecret(bg, "myapp", "prod", "A", 1, false)
	if err != nil || strings.Join(res.Set, ",") != "A" || res.Seq != 5 {
		t.Fatalf("rollback A: %+v, %v", res, err)
	}
	e, _ := v.Read(bg, "myapp", "prod")
	if got := values(e); got["A"] != "one" || got["B"] != "bee" {
		t.Fatalf("after rollback: %v", got)
	}
	e.Wipe()
	h2, err := v.History(bg, "myapp", "prod")
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Wipe()
	a2 := h2.Of("A")
	if len(a2) != 4 || a2[3].Version != 4 || a2[3].Fingerprint != a[0].Fingerprint {
		t.Fatalf("after rollback A has %d versions; the newest must carry version 1's fingerprint", len(a2))
	}

	// The whole env back to seq 1: B goes, A stays "one" (unchanged, so not written). Dry run first.
	dry, err := v.RollbackEnv(bg, "myapp", "prod", 1, true)
	if err != nil || len(dry.Set) != 0 || strings.Join(dry.Delete, ",") != "B" || dry.Seq != 0 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if e, _ := v.Read(bg, "myapp", "prod"); e.Seq != 5 {
		t.Fatal("a dry run wrote")
	}
	if res, err := v.RollbackEnv(bg, "myapp", "prod", 1, false); err != nil || res.Seq != 6 {
		t.Fatalf("env rollback: %+v, %v", res, err)
	}
	if _, err := v.RollbackSecret(bg, "myapp", "prod", "A", 9, false); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("rollback to a missing version: %v", err)
	}
}

// TestHistoryRewritesAreDetected runs the real server behind a proxy that rewrites the history it
// serves: each rewrite must fail with ErrTampered, never show a history.
func TestHistoryRewritesAreDetected(t *testing.T) {
	f, v := historyFixture(t)
	rewrite := func(fn func(h *api.EnvHistory)) func(string, []byte) []byte {
		return func(path string, body []byte) []byte {
			if !strings.HasSuffix(path, "/history") {
				return body
			}
			var h api.EnvHistory
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatal(err)
			}
			fn(&h)
			out, _ := json.Marshal(&h)
			return out
		}
	}
	for name, fn := range map[string]func(h *api.EnvHistory){
		"drop a middle version": func(h *api.EnvHistory) {
			h.Manifests = append(h.Manifests[:1], h.Manifests[2:]...)
		},
		"reorder two versions": func(h *api.EnvHistory) {
			h.Manifests[1], h.Manifests[2] = h.Manifests[2], h.Manifests[1]
		},
		"drop the newest": func(h *api.EnvHistory) { h.Manifests = h.Manifests[:len(h.Manifests)-1] },
		"drop the oldest": func(h *api.EnvHistory) { h.Manifests = h.Manifests[1:] },
		"forge a past manifest": func(h *api.EnvHistory) {
			h.Manifests[1].Manifest[len(h.Manifests[1].Manifest)-1] ^= 1
		},
		"replay a past manifest in place of another": func(h *api.EnvHistory) {
			h.Manifests[2] = h.Manifests[1]
		},
		"renumber the listing": func(h *api.EnvHistory) { h.Manifests[0].Seq = 7 },
	} {
		f.proxy.set(rewrite(fn))
		h, err := v.History(bg, "myapp", "prod")
		if !errors.Is(err, ErrTampered) {
			h.Wipe()
			t.Errorf("%s: got %v, want ErrTampered", name, err)
			continue
		}
		if strings.Contains(err.Error(), "three") || strings.Contains(err.Error(), "bee") {
			t.Errorf("%s: the error shows a secret value: %v", name, err)
		}
		// A rollback on a rewritten history writes nothing.
		if _, err := v.RollbackSecret(bg, "myapp", "prod", "A", 1, false); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: rollback went on: %v", name, err)
		}
	}
	f.proxy.set(nil)
	e, err := v.Read(bg, "myapp", "prod")
	if err != nil || e.Seq != 4 || values(e)["A"] != "three" {
		t.Fatalf("after the attacks: seq %d, %v", e.Seq, err)
	}
	e.Wipe()
	if h, err := v.History(bg, "myapp", "prod"); err != nil {
		t.Fatalf("honest history after the attacks: %v", err)
	} else {
		h.Wipe()
	}
}

// TestHistoryRecordSwapIsNotAValue: a server that answers a past record with another one (a valid
// record of another version) does not make the client show it as that version's value.
func TestHistoryRecordSwapIsNotAValue(t *testing.T) {
	f, v := historyFixture(t)
	f.proxy.set(func(path string, body []byte) []byte {
		if !strings.HasSuffix(path, "/history/records") {
			return body
		}
		var rs api.HistoryRecords
		if err := json.Unmarshal(body, &rs); err != nil {
			t.Fatal(err)
		}
		// Every record of A answered with the newest one's bytes.
		var newest []byte
		for _, r := range rs.Records {
			if r.Version == 3 {
				newest = r.Record
			}
		}
		for i := range rs.Records {
			if rs.Records[i].Version < 3 {
				rs.Records[i].Record = newest
			}
		}
		out, _ := json.Marshal(&rs)
		return out
	})
	h, err := v.History(bg, "myapp", "prod")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Wipe()
	for _, sv := range h.Of("A") {
		if sv.Version < 3 && sv.Value != nil {
			t.Fatalf("version %d shows a value the manifest does not name", sv.Version)
		}
	}
	if _, err := v.RollbackSecret(bg, "myapp", "prod", "A", 1, false); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("rollback to a swapped version: %v", err)
	}
}

// TestHistoryRecordsOmitted: the client asks again for records an answer omitted, and refuses a
// server that omits without ever sending.
func TestHistoryRecordsOmitted(t *testing.T) {
	f, v := historyFixture(t)
	rounds := 0
	omit := func(keep int) func(string, []byte) []byte {
		return func(path string, body []byte) []byte {
			if !strings.HasSuffix(path, "/history/records") {
				return body
			}
			rounds++
			var rs api.HistoryRecords
			if err := json.Unmarshal(body, &rs); err != nil {
				t.Fatal(err)
			}
			for len(rs.Records) > keep {
				last := rs.Records[len(rs.Records)-1]
				sum := sha256.Sum256(last.Record)
				rs.Omitted = append(rs.Omitted, sum[:])
				rs.Records = rs.Records[:len(rs.Records)-1]
			}
			out, _ := json.Marshal(&rs)
			return out
		}
	}
	f.proxy.set(omit(1))
	h, err := v.History(bg, "myapp", "prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range h.Versions {
		if sv.Value == nil {
			t.Fatalf("%s v%d not fetched after omissions", sv.Name, sv.Version)
		}
	}
	h.Wipe()
	if rounds != 4 { // A v1–v3 and B v1: one record per answer
		t.Fatalf("%d requests, want 4", rounds)
	}
	f.proxy.set(omit(0))
	if _, err := v.History(bg, "myapp", "prod"); !errors.Is(err, ErrTampered) {
		t.Fatalf("a server that omits everything: %v", err)
	}
}
