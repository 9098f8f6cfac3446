// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

func rnd(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// fill creates an account with one app and env in db and returns the env's id.
func fill(t *testing.T, db *DB, email string) []byte {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	id := rnd(16)
	a := &store.Account{ID: id, Email: email, KDF: store.KDF{T: 3, M: 262144, P: 4, Salt: rnd(16)}, WrappedAK: rnd(74),
		KeyCheck: rnd(32), LoginVerifier: rnd(32), WrappedSignSeed: rnd(74), SignPub: rnd(32), CreatedAt: now}
	if err := db.CreateAccount(ctx, a, &store.Device{KeyID: rnd(8), AccountID: id, Verifier: rnd(32), Name: "d", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	app := &store.App{ID: rnd(16), AccountID: id, Name: "web", CreatedAt: now}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	env := &store.Env{ID: rnd(16), AppID: app.ID, AccountID: id, Name: "prod", Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}
	if err := db.CreateEnv(ctx, env); err != nil {
		t.Fatal(err)
	}
	return env.ID
}

// commitN commits n times to env, each commit adding one record, and returns the last seq.
func commitN(t *testing.T, db *DB, env []byte, from uint64, n int) uint64 {
	t.Helper()
	seq := from
	for range n {
		c := &store.Commit{EnvID: env, ExpectedSeq: seq, Seq: seq + 1, Manifest: fmt.Appendf(nil, "manifest %d", seq+1), ManifestSig: rnd(64),
			Put: []store.Record{{Blind: rnd(16), Version: 1, Data: rnd(200)}}, At: time.Now()}
		if err := db.CommitEnv(context.Background(), c); err != nil {
			t.Error(err)
			return seq
		}
		seq++
	}
	return seq
}

// consistent checks that env's manifest and records agree: seq n has n records and says so.
func consistent(t *testing.T, db *DB, env []byte) uint64 {
	t.Helper()
	v, err := db.ReadEnv(context.Background(), env, store.ReadOptions{Records: store.RecordsFull})
	if err != nil {
		t.Fatal(err)
	}
	if v.Env.Seq != uint64(len(v.Records)) || v.Env.Count != len(v.Records) {
		t.Fatalf("inconsistent env: seq %d, count %d, %d records", v.Env.Seq, v.Env.Count, len(v.Records))
	}
	if v.Env.Seq > 0 && string(v.Env.Manifest) != fmt.Sprintf("manifest %d", v.Env.Seq) {
		t.Fatalf("manifest %q does not belong to seq %d", v.Env.Manifest, v.Env.Seq)
	}
	return v.Env.Seq
}

// TestBackupOnline takes backups while a writer commits: each backup opens, is intact, and holds
// one consistent state (a manifest with exactly its records), never a torn one.
func TestBackupOnline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := fill(t, db, "a@example.com")
	secret, _ := db.ServerSecret(ctx)
	commitN(t, db, env, 0, 5)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seq := uint64(5)
		for !stop.Load() {
			seq = commitN(t, db, env, seq, 1)
		}
	}()
	var seqs []uint64
	for i := range 3 {
		file := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		if err := Backup(ctx, path, file); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("backup file: %v, mode %v, want 0600", err, fi.Mode())
		}
		b, err := Open(ctx, file)
		if err != nil {
			t.Fatalf("open backup: %v", err)
		}
		seqs = append(seqs, consistent(t, b, env))
		if got, _ := b.ServerSecret(ctx); !bytes.Equal(got, secret) {
			t.Fatal("backup lost the server secret")
		}
		b.Close()
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("backups at seq %v while committing", seqs)
	if seqs[0] < 5 {
		t.Fatalf("backup misses committed data: seq %d < 5", seqs[0])
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ov-server.db")
	if err := Backup(ctx, path, filepath.Join(dir, "b.db")); err == nil {
		t.Fatal("backup of a missing database succeeded")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("backup created the missing database")
	}
	db := fill2(t, path)
	db.Close()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Backup(ctx, path, existing); err == nil {
		t.Fatal("backup replaced an existing file")
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("backup changed an existing file")
	}
	// The database itself is an existing file too.
	if err := Backup(ctx, path, path); err == nil {
		t.Fatal("backup onto the database itself succeeded")
	}
}

func fill2(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, "a@example.com")
	return db
}

// TestRestore backs up, changes the database, restores: the changes are gone, the backed-up
// state (and the server secret) is back.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	env := fill(t, db, "a@example.com")
	commitN(t, db, env, 0, 3)
	secret, _ := db.ServerSecret(ctx)
	file := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, path, file); err != nil {
		t.Fatal(err)
	}
	commitN(t, db, env, 3, 4)
	fill(t, db, "b@example.com")
	db.Close()
	before, _ := os.ReadFile(file)

	if err := Restore(ctx, file, path); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if seq := consistent(t, db, env); seq != 3 {
		t.Fatalf("restored env at seq %d, want 3", seq)
	}
	if _, err := db.AccountByEmail(ctx, "b@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account created after the backup survived the restore: %v", err)
	}
	if got, _ := db.ServerSecret(ctx); !bytes.Equal(got, secret) {
		t.Fatal("server secret differs after restore")
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("restore changed the backup file")
	}
	// Into a new path: created 0600.
	fresh := filepath.Join(dir, "new", "ov-server.db")
	if err := Restore(ctx, file, fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored file: %v %v", err, fi.Mode())
	}
}

// TestRestoreRefusesBadBackups: a truncated or foreign file, or one from a newer schema, is
// refused and the database is left as it was.
func TestRestoreRefusesBadBackups(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	env := fill(t, db, "a@example.com")
	commitN(t, db, env, 0, 2)
	good := filepath.Join(dir, "good.db")
	if err := Backup(ctx, path, good); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	if err := Backup(ctx, path, newer); err != nil {
		t.Fatal(err)
	}
	nb, err := Open(ctx, newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nb.w.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (?, 0)`, LatestSchema()+1); err != nil {
		t.Fatal(err)
	}
	nb.Close()
	raw, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.db")
	os.WriteFile(truncated, raw[:len(raw)/2], 0o600)
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not sqlite "), 1000), 0o600)
	foreign := filepath.Join(dir, "foreign.db")
	f, _ := openRaw(foreign)
	f.Exec(`CREATE TABLE x (y)`)
	f.Close()
	commitN(t, db, env, 2, 1)
	db.Close()

	for name, want := range map[string]error{newer: ErrSchemaTooNew, truncated: nil, garbage: nil, foreign: nil, filepath.Join(dir, "missing"): nil} {
		err := Restore(ctx, name, path)
		if err == nil || want != nil && !errors.Is(err, want) {
			t.Errorf("restore %s: %v, want an error (%v)", filepath.Base(name), err, want)
		}
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if seq := consistent(t, db, env); seq != 3 {
		t.Fatalf("a refused restore changed the database: seq %d, want 3", seq)
	}
}

// TestRestoreRefusedWhileServing: another process holding the database open (as a running
// ov-server does) makes restore fail with ErrInUse, and nothing changes.
func TestRestoreRefusedWhileServing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	env := fill(t, db, "a@example.com")
	file := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, path, file); err != nil {
		t.Fatal(err)
	}
	commitN(t, db, env, 0, 2)
	db.Close()

	// A real second process opens the database and keeps it open.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), "OV_TEST_HOLD_DB="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "holding\n" {
		t.Fatalf("helper: %q", line)
	}
	err = Restore(ctx, file, path)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("restore under a running server: %v, want ErrInUse", err)
	}
	stdin.Close()
	cmd.Wait()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if seq := consistent(t, db, env); seq != 2 {
		t.Fatalf("refused restore changed the database: seq %d", seq)
	}
	db.Close()
	// Once the server is gone, the same restore works.
	if err := Restore(ctx, file, path); err != nil {
		t.Fatal(err)
	}
}

// TestHelperHoldDatabase is not a test: TestRestoreRefusedWhileServing runs it in a child process.
func TestHelperHoldDatabase(t *testing.T) {
	path := os.Getenv("OV_TEST_HOLD_DB")
	if path == "" {
		t.Skip("helper process only")
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Apps(context.Background(), rnd(16)); err != nil {
		t.Fatal(err)
	}
	fmt.Println("holding")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func openRaw(path string) (*sql.DB, error) { return sql.Open("sqlite", path) }
