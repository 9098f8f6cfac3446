// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "ov-server.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestConformanceReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ov-server.db")
	storetest.RunReopen(t, func(t *testing.T) store.Store {
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ov-server")
	path := filepath.Join(dir, "ov-server.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Write something so that the WAL exists.
	if _, err := db.ServerSecret(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	var mode string
	if err := db.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q (%v), want wal", mode, err)
	}
	var fk int
	if err := db.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys %d (%v), want 1", fk, err)
	}
}

func TestRefusesWideMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ov-server.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(context.Background(), path); err == nil {
		db.Close()
		t.Fatal("opened a 0644 database")
	}
}

func TestReopenIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	a := &store.Account{ID: id, Email: "a@example.com", KDF: store.KDF{T: 3, M: 262144, P: 4, Salt: make([]byte, 16)},
		WrappedAK: make([]byte, 74), KeyCheck: make([]byte, 32), LoginVerifier: make([]byte, 32), WrappedSignSeed: make([]byte, 74),
		SignPub: make([]byte, 32), CreatedAt: time.Now()}
	if err := db.CreateAccount(ctx, a, &store.Device{KeyID: []byte("12345678"), AccountID: id, Verifier: make([]byte, 32), Name: "d", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	secret, _ := db.ServerSecret(ctx)
	db.Close()

	for range 2 {
		db, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil || v != LatestSchema() {
			t.Fatalf("schema version %d (%v), want %d", v, err, LatestSchema())
		}
		var rows int
		db.r.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&rows)
		if rows != LatestSchema() {
			t.Fatalf("%d schema_version rows, want %d", rows, LatestSchema())
		}
		if _, err := db.AccountByEmail(ctx, "A@example.com"); err != nil {
			t.Fatalf("data lost on reopen: %v", err)
		}
		again, _ := db.ServerSecret(ctx)
		if string(again) != string(secret) {
			t.Fatal("server secret changed on reopen")
		}
		db.Close()
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (?, 0)`, LatestSchema()+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	defer db.Close()
	if err := db.AppendAudit(ctx, &store.AuditEntry{Time: time.Now(), Actor: "anonymous", Action: "x", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`UPDATE audit SET result = 'forged'`); err == nil {
		t.Error("UPDATE of the audit log succeeded")
	}
	if _, err := db.w.Exec(`DELETE FROM audit`); err == nil {
		t.Error("DELETE from the audit log succeeded")
	}
}

// TestMultiInstance: two handles on one file, as two processes would have.
func TestMultiInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ov-server.db")
	a, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.RunMulti(t, a, b)
}

// BenchmarkStore runs storetest.Bench with prepared statements reused (what Open does) and, as
// the baseline of the same run, with every query prepared and finalized on each call (database/sql's
// default).
func BenchmarkStore(b *testing.B) {
	for _, prepared := range []bool{false, true} {
		name := map[bool]string{false: "unprepared", true: "prepared"}[prepared]
		b.Run(name, func(b *testing.B) {
			db, err := Open(context.Background(), filepath.Join(b.TempDir(), "ov-server.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.ws.off, db.rs.off = !prepared, !prepared
			storetest.Bench(b, db)
		})
	}
}

// TestStatementsReused: after the first round of calls, transactions find their statements
// prepared (nothing pending), and a second round prepares nothing new.
func TestStatementsReused(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	round := func() {
		storetest.RunMulti(t, db, db)
	}
	round()
	round() // prepares what the first round's transactions missed
	db.ws.mu.Lock()
	n, pending := len(db.ws.m), len(db.ws.pending)
	db.ws.mu.Unlock()
	round()
	db.ws.mu.Lock()
	n2, pending2 := len(db.ws.m), len(db.ws.pending)
	db.ws.mu.Unlock()
	if n == 0 || n2 != n || pending2 != 0 {
		t.Fatalf("writer statements: %d prepared (%d pending), then %d (%d pending): want a stable, non-empty set", n, pending, n2, pending2)
	}
}

// TestFeedTriggers: the triggers of the change log announce what each write changes, whoever writes.
func TestFeedTriggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ov.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Plain SQL through a connection of its own, as an operator's sqlite3 would.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	storetest.ChangeFeed(t, db, func(q string, args ...any) error {
		_, err := other.Exec(q, args...)
		return err
	})
}

// TestFeedSharedReads: concurrent callers share reads of the change log, yet each sees every
// change committed before it asked. Each goroutine commits a change through another connection,
// then calls Sync, and must find its change reported; and Current, pollEvery later, must too.
func TestFeedSharedReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ov.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var mu sync.Mutex
	seen := map[string]bool{}
	f, err := db.StartFeed(context.Background(), func(c store.Change) {
		mu.Lock()
		seen[string(c.ID)] = true
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				id := []byte(fmt.Sprintf("id-%d-%d", g, i))
				// A change as the triggers write it (in one transaction), without the tables it
				// would come from.
				tx, err := other.Begin()
				if err == nil {
					_, err = tx.Exec(`UPDATE change_counter SET n = n + 1;
						INSERT INTO changes (kind, id, seq) VALUES ('e', ?, (SELECT n FROM change_counter))`, id)
					if err == nil {
						err = tx.Commit()
					} else {
						tx.Rollback()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					f.Sync(context.Background())
				} else {
					time.Sleep(pollEvery)
					if !f.Current() {
						t.Error("not current")
						return
					}
				}
				mu.Lock()
				ok := seen[string(id)]
				mu.Unlock()
				if !ok {
					t.Errorf("%s committed before Current was asked, but not reported", id)
					return
				}
			}
		})
	}
	wg.Wait()
}
