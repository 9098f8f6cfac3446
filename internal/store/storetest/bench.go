// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// Bench measures the store operations the server runs on every request: authenticating a
// device, reading an environment (index only, and with 50 sealed records), committing one
// changed secret, committing a 50-secret import, and appending to the audit log. Each
// implementation runs it from a Benchmark function; compare the figures of one run as ratios
// (benchstat).
func Bench(b *testing.B, s store.Store) {
	a, dev := newAccount(fmt.Sprintf("bench-%x@example.com", rnd(4)))
	if err := s.CreateAccount(ctx, a, dev); err != nil {
		b.Fatal(err)
	}
	app := &store.App{ID: rnd(16), AccountID: a.ID, Name: "web", CreatedAt: now}
	if err := s.CreateApp(ctx, app); err != nil {
		b.Fatal(err)
	}
	newEnv := func(name string) *store.Env {
		e := &store.Env{ID: rnd(16), AppID: app.ID, AccountID: a.ID, Name: fmt.Sprintf("%s-%x", name, rnd(4)), Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}
		if err := s.CreateEnv(ctx, e); err != nil {
			b.Fatal(err)
		}
		return e
	}
	full := newEnv("full")
	recs := make([]store.Record, 50)
	for i := range recs {
		recs[i] = rec(rnd(16), 1, 300)
	}
	if err := s.CommitEnv(ctx, &store.Commit{EnvID: full.ID, Seq: 1, Manifest: rnd(2000), ManifestSig: rnd(64), Put: recs, At: now}); err != nil {
		b.Fatal(err)
	}

	b.Run("Device", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Device(ctx, dev.KeyID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadEnvIndex", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ReadEnv(ctx, full.ID, store.ReadOptions{Records: store.RecordsIndex}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadEnvFull50", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ReadEnv(ctx, full.ID, store.ReadOptions{Records: store.RecordsFull}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CommitOne", func(b *testing.B) {
		e := newEnv("one")
		blind := rnd(16)
		seq := uint64(0)
		for b.Loop() {
			if err := s.CommitEnv(ctx, &store.Commit{EnvID: e.ID, ExpectedSeq: seq, Seq: seq + 1, Manifest: rnd(2000), ManifestSig: rnd(64),
				Put: []store.Record{rec(blind, seq+1, 300)}, At: now}); err != nil {
				b.Fatal(err)
			}
			seq++
		}
	})
	b.Run("CommitImport50", func(b *testing.B) {
		e := newEnv("import")
		seq := uint64(0)
		for b.Loop() {
			if err := s.CommitEnv(ctx, &store.Commit{EnvID: e.ID, ExpectedSeq: seq, Seq: seq + 1, Manifest: rnd(2000), ManifestSig: rnd(64),
				Put: recs, At: now}); err != nil {
				b.Fatal(err)
			}
			seq++
		}
	})
	b.Run("AppendAudit", func(b *testing.B) {
		for b.Loop() {
			if err := s.AppendAudit(ctx, &store.AuditEntry{AccountID: a.ID, Time: time.Now(), Actor: "device:0102030405060708",
				Action: "env.read", Target: "env:00", RemoteAddr: "127.0.0.1", Result: "ok"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
