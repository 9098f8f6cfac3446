// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/hex"
	"testing"

	"github.com/opaquevault/opaquevault/internal/api"
)

// The benchmarks go through the real client, HTTP on loopback and a real SQLite file.

const benchRecords, benchRecordSize = 1000, 200

// BenchmarkCommit1000 commits an environment of 1,000 records, all replaced each time.
func BenchmarkCommit1000(b *testing.B) {
	h := newHarness(b, noRateLimits())
	u := h.register("bench@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	blinds := make([][]byte, benchRecords)
	for i := range blinds {
		blinds[i] = rnd(16)
	}
	drafts := make([]*api.Commit, 0, b.N)
	for i := range b.N {
		d := u.draft(e)
		d.expected, d.seq = uint64(i), uint64(i+1)
		for _, bl := range blinds {
			d.putRecord(api.Record{Blind: bl, Version: uint64(i + 1), Record: sealed(benchRecordSize)})
		}
		drafts = append(drafts, d.build())
	}
	id := hex.EncodeToString(e.envID)
	b.SetBytes(benchRecords * benchRecordSize)
	b.ResetTimer()
	for i := range b.N {
		if _, err := u.c.Commit(bg, id, drafts[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetEnv1000 reads an environment of 1,000 records.
func BenchmarkGetEnv1000(b *testing.B) {
	h := newHarness(b, noRateLimits())
	u := h.register("bench@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, benchRecords, benchRecordSize)
	id := hex.EncodeToString(e.envID)
	b.SetBytes(benchRecords * benchRecordSize)
	b.ResetTimer()
	for range b.N {
		st, err := u.c.Env(bg, id)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Records) != benchRecords {
			b.Fatalf("%d records", len(st.Records))
		}
	}
}
