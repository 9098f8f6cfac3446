// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

var bg = context.Background()

func openNew(t testing.TB) *DB {
	t.Helper()
	db, err := Open(bg, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	pgtest.AdminDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openNew(t) })
}

func TestConformanceReopen(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	storetest.RunReopen(t, func(t *testing.T) store.Store {
		db, err := Open(bg, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConcurrentMigrations opens one new database from many pools at once, as instances starting
// together do: every open succeeds and the schema is applied exactly once (without the advisory
// lock, concurrent CREATE TABLEs fail or a version is recorded twice).
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const n = 6
	errs := make(chan error, n)
	dbs := make(chan *DB, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			db, err := Open(bg, dsn)
			errs <- err
			dbs <- db
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
		if db := <-dbs; db != nil {
			defer db.Close()
		}
	}
	db := openDSN(t, dsn)
	var rows, max int
	if err := db.pool.QueryRow(bg, `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&rows, &max); err != nil {
		t.Fatal(err)
	}
	if rows != LatestSchema() || max != LatestSchema() {
		t.Fatalf("schema_version: %d rows up to %d, want %d", rows, max, LatestSchema())
	}
	// Every instance sees the same server secret.
	s1, err := db.ServerSecret(bg)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := openDSN(t, dsn).ServerSecret(bg)
	if err != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("server secret differs between instances (%v)", err)
	}
}

func openDSN(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDSN(t, dsn)
	if _, err := db.pool.Exec(bg, `INSERT INTO schema_version (version, applied_at) VALUES ($1, now())`, LatestSchema()+1); err != nil {
		t.Fatal(err)
	}
	if db2, err := Open(bg, dsn); !errors.Is(err, ErrSchemaTooNew) {
		if db2 != nil {
			db2.Close()
		}
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	db := openNew(t)
	defer db.Close()
	if err := db.AppendAudit(bg, &store.AuditEntry{Time: time.Now(), Actor: "anonymous", Action: "x", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET result = 'forged'`, `DELETE FROM audit`, `TRUNCATE audit`} {
		if _, err := db.pool.Exec(bg, q); err == nil {
			t.Errorf("%s succeeded on the audit log", q)
		}
	}
	var n int
	db.pool.QueryRow(bg, `SELECT COUNT(*) FROM audit WHERE result = 'ok'`).Scan(&n)
	if n != 1 {
		t.Fatalf("audit log changed: %d entries", n)
	}
}

// TestMultiInstance runs the multi-instance conformance checks on two pools (two instances) on
// one database.
func TestMultiInstance(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	storetest.RunMulti(t, openDSN(t, dsn), openDSN(t, dsn))
}

// TestPasswordNeverFromArgv: a DSN carrying a password is refused (it would be in argv, readable
// by every local user), and the error does not repeat the password.
func TestPasswordNeverFromArgv(t *testing.T) {
	for _, dsn := range []string{
		"postgres://ov:s3cret-pw@db.example/ov",
		"postgres://ov@db.example/ov?password=s3cret-pw",
		"postgresql://ov:s3cret-pw@db.example/ov?sslmode=verify-full",
	} {
		db, err := Open(bg, dsn)
		if err == nil {
			db.Close()
			t.Fatalf("opened %s", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "db-password") {
			t.Errorf("the error does not say where the password goes: %v", err)
		}
	}
	if _, err := Open(bg, "postgres://ov@db.example/%zz"); err == nil || strings.Contains(err.Error(), "%zz") {
		t.Errorf("a URL that does not parse: %v", err)
	}
}

// TestPasswordFromCredential connects over TCP with scram-sha-256 as a role whose password is
// only in $CREDENTIALS_DIRECTORY/db-password; a wrong password there is refused by the server
// and the error does not show it.
func TestPasswordFromCredential(t *testing.T) {
	admin := pgtest.AdminDSN(t)
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	role, pw := "ov_"+pgtest.RandomName(), "pw-"+pgtest.RandomName()
	pgtest.Exec(t, admin, `SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE `+role+` LOGIN PASSWORD '`+pw+`'`)
	t.Cleanup(func() { pgtest.Exec(t, admin, `DROP ROLE IF EXISTS `+role) }) // after the database's cleanup
	dbdsn := pgtest.NewDatabase(t)
	dbname := strings.TrimPrefix(mustURL(t, dbdsn).Path, "/")
	pgtest.Exec(t, dbdsn, `GRANT CREATE ON SCHEMA public TO `+role)
	dsn := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, cfg.Port, dbname)

	creds := t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("PGPASSFILE", filepath.Join(creds, "none")) // no ~/.pgpass in the way
	// No credential: the server refuses.
	if db, err := Open(bg, dsn); err == nil {
		db.Close()
		t.Fatal("connected without a password")
	}
	os.WriteFile(filepath.Join(creds, PasswordCredential), []byte("wrong-"+pw+"\n"), 0o600)
	db, err := Open(bg, dsn)
	if err == nil {
		db.Close()
		t.Fatal("connected with a wrong password")
	}
	if strings.Contains(err.Error(), pw) {
		t.Fatalf("the error shows the password: %v", err)
	}
	os.WriteFile(filepath.Join(creds, PasswordCredential), []byte(pw+"\n"), 0o600)
	db, err = Open(bg, dsn)
	if err != nil {
		t.Fatalf("open with the credential: %v", err)
	}
	defer db.Close()
	if err := db.Ping(bg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(db.Path(), pw) {
		t.Fatal("Path shows the password")
	}
}

// TestPasswordFromPassfile: libpq's passfile works too.
func TestPasswordFromPassfile(t *testing.T) {
	admin := pgtest.AdminDSN(t)
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	role, pw := "ov_"+pgtest.RandomName(), "pw-"+pgtest.RandomName()
	pgtest.Exec(t, admin, `CREATE ROLE `+role+` LOGIN PASSWORD '`+pw+`'`)
	t.Cleanup(func() { pgtest.Exec(t, admin, `DROP ROLE IF EXISTS `+role) })
	dbdsn := pgtest.NewDatabase(t)
	dbname := strings.TrimPrefix(mustURL(t, dbdsn).Path, "/")
	pgtest.Exec(t, dbdsn, `GRANT CREATE ON SCHEMA public TO `+role)
	pass := filepath.Join(t.TempDir(), "pgpass")
	os.WriteFile(pass, []byte(fmt.Sprintf("127.0.0.1:%d:%s:%s:%s\n", cfg.Port, dbname, role, pw)), 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	t.Setenv("PGPASSFILE", pass)
	db, err := Open(bg, fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, cfg.Port, dbname))
	if err != nil {
		t.Fatalf("open with a passfile: %v", err)
	}
	db.Close()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// BenchmarkStore runs storetest.Bench with every statement prepared once per connection and
// reused (what Open does), and, as the baseline of the same run, with every statement parsed and
// planned on each call.
func BenchmarkStore(b *testing.B) {
	for _, m := range []struct {
		name string
		mode pgx.QueryExecMode
	}{{"unprepared", pgx.QueryExecModeExec}, {"prepared", pgx.QueryExecModeCacheStatement}} {
		b.Run(m.name, func(b *testing.B) {
			db, err := open(bg, pgtest.NewDatabase(b), &m.mode)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			storetest.Bench(b, db)
		})
	}
}

// TestExecModeFromURL: default_query_exec_mode= in the URL wins over the statement cache (for
// poolers in transaction mode), and the store works that way too.
func TestExecModeFromURL(t *testing.T) {
	u := mustURL(t, pgtest.NewDatabase(t))
	q := u.Query()
	q.Set("default_query_exec_mode", "exec")
	u.RawQuery = q.Encode()
	storetest.RunReopen(t, func(t *testing.T) store.Store {
		db, err := Open(bg, u.String())
		if err != nil {
			t.Fatal(err)
		}
		if m := db.pool.Config().ConnConfig.DefaultQueryExecMode; m != pgx.QueryExecModeExec {
			t.Fatalf("query mode %v, want exec", m)
		}
		return db
	})
	db := openNew(t)
	defer db.Close()
	if m := db.pool.Config().ConnConfig.DefaultQueryExecMode; m != pgx.QueryExecModeCacheStatement {
		t.Fatalf("default query mode %v, want the statement cache", m)
	}
}
