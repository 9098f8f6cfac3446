// SPDX-License-Identifier: Apache-2.0

// Package pgstore implements [store.Store] on PostgreSQL through github.com/jackc/pgx/v5: a
// connection pool shared by every request of the process, statements prepared once per
// connection and reused (pgx's statement cache), numbered schema migrations applied in one
// transaction under an advisory lock (so that several ov-server instances starting at once on one
// database migrate it exactly once), and row locks for every compare-and-swap, so that any
// number of instances may share one database.
//
// The database password never comes from the command line: a DSN that carries one is refused.
// It comes from $CREDENTIALS_DIRECTORY/db-password (systemd's LoadCredential=), or from what
// libpq's conventions give pgx: a passfile (~/.pgpass, PGPASSFILE, passfile=) or a service file
// (service=, PGSERVICEFILE).
//
// It stores ciphertext, verifiers and public keys only. It never sees key material.
//
// The code is split by area, as the [store.Store] interface is: accounts.go (accounts and
// devices), envs.go (apps, environments, commits), machines.go, audit.go; the schema history is
// in schema.go. A new area is a new file plus, if it needs tables, a new entry in migrations.
package pgstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opaquevault/opaquevault/internal/store"
)

// ErrSchemaTooNew means the database was written by a newer program: opening it is refused rather
// than risking a downgrade.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// PasswordCredential is the name of the systemd credential (a file in $CREDENTIALS_DIRECTORY)
// that holds the database password.
const PasswordCredential = "db-password"

// migrationLock is the key of the advisory lock held while migrating ("ovserver" in ASCII).
const migrationLock int64 = 0x6f76736572766572

// LatestSchema is the schema version this package writes.
func LatestSchema() int { return len(migrations) }

// DB is a [store.Store] on one PostgreSQL database.
type DB struct {
	pool  *pgxpool.Pool
	shown string // the DSN without any password, for logs

	secretMu sync.Mutex
	secret   []byte

	feedMu sync.Mutex
	feed   *feed // feed.go; nil until StartFeed
}

var _ store.Store = (*DB)(nil)

// IsDSN reports whether s names a PostgreSQL database (a postgres:// or postgresql:// URL) rather
// than a file.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database named by dsn (a postgres:// URL, with any libpq parameter, such
// as sslmode=verify-full, sslrootcert=, service= or pool_max_conns=) and brings its schema up to
// date. Errors wrap [ErrSchemaTooNew] when the database comes from a newer schema.
//
// Statements are prepared once per connection and reused (pgx's statement cache), unless the URL
// says otherwise with default_query_exec_mode= (exec, for a pooler in transaction mode).
func Open(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, nil)
}

// open is Open with a chosen query mode: benchmarks compare the statement cache (prepared once
// per connection) with QueryExecModeExec (parsed and planned on every call).
func open(ctx context.Context, dsn string, mode *pgx.QueryExecMode) (*DB, error) {
	cfg, shown, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if mode != nil {
		cfg.ConnConfig.DefaultQueryExecMode = *mode
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", shown, err)
	}
	db := &DB{pool: pool, shown: shown}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// parseDSN checks dsn and returns the pool's configuration and the DSN as it may be shown.
func parseDSN(dsn string) (*pgxpool.Config, string, error) {
	if !IsDSN(dsn) {
		return nil, "", errors.New("open database: want a postgres:// URL")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url's errors quote the whole input, which may hold a password.
		return nil, "", errors.New("open database: the postgres:// URL does not parse")
	}
	shown := showURL(u)
	if _, set := u.User.Password(); set || u.Query().Has("password") {
		return nil, "", fmt.Errorf("open database %s: the URL carries a password, which any local user can read in the process list; "+
			"put it in $CREDENTIALS_DIRECTORY/%s (LoadCredential=) or a passfile instead", shown, PasswordCredential)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("open database %s: %w", shown, err)
	}
	if cfg.ConnConfig.Password == "" {
		pw, err := credentialPassword()
		if err != nil {
			return nil, "", fmt.Errorf("open database %s: %w", shown, err)
		}
		cfg.ConnConfig.Password = pw
	}
	return cfg, shown, nil
}

// showURL is u without a password, for logs: user, host, port and database, and the query's
// parameters except password.
func showURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	q := c.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// credentialPassword reads $CREDENTIALS_DIRECTORY/db-password; "" when there is none.
func credentialPassword() (string, error) {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(dir, PasswordCredential))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read credential %s: %w", PasswordCredential, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" || strings.ContainsAny(pw, "\x00\r\n") {
		return "", fmt.Errorf("read credential %s: want one line holding the password", PasswordCredential)
	}
	return pw, nil
}

// Path returns the database's DSN without any password, for logs.
func (db *DB) Path() string { return db.shown }

// Pool returns the connection pool, for tests and tools that need raw SQL.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

func (db *DB) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Instances starting at once queue here; the first migrates, the others then find the
		// schema current. The lock is released when the transaction ends, even if the process dies.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return err
		}
		var cur int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
			return err
		}
		if cur > len(migrations) {
			return fmt.Errorf("schema version %d, this program knows up to %d: %w", cur, len(migrations), ErrSchemaTooNew)
		}
		for v := cur; v < len(migrations); v++ {
			for _, stmt := range migrations[v] {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("to version %d: %w", v+1, err)
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)`, v+1, time.Now()); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate database %s: %w", db.shown, err)
	}
	return nil
}

// SchemaVersion returns the schema version recorded in the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Ping implements [store.Store].
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, `SELECT 1 FROM schema_version LIMIT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close implements [store.Store].
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// ServerSecret implements [store.Store].
func (db *DB) ServerSecret(ctx context.Context) ([]byte, error) {
	db.secretMu.Lock()
	defer db.secretMu.Unlock()
	if db.secret != nil {
		return bytes.Clone(db.secret), nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("create server secret: %w", err)
	}
	// The first instance's secret wins; every other instance reads it back.
	if _, err := db.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('server_secret', $1) ON CONFLICT (key) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("create server secret: %w", err)
	}
	var v []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'server_secret'`).Scan(&v); err != nil {
		return nil, fmt.Errorf("read server secret: %w", err)
	}
	if len(v) != 32 {
		return nil, fmt.Errorf("read server secret: %d bytes, want 32", len(v))
	}
	db.secret = v
	return bytes.Clone(v), nil
}

// pgErr maps constraint failures and missing rows to the store's sentinels.
func pgErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w", op, store.ErrExists)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w", op, store.ErrNotFound)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isUnique reports whether err is a unique violation of the named constraint.
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(tag pgconn.CommandTag, op string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// utc keeps a time to the microsecond, in UTC, as the store promises.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime is nil for the zero time ("never"), else the time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return utc(t)
}

// fromNull turns a scanned nullable time into the zero time or a UTC time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullBytes is nil (NULL) for an empty slice.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// readTx runs fn in one read-only snapshot (REPEATABLE READ), so that what it reads is consistent.
func (db *DB) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// writeTx runs fn in one READ COMMITTED transaction; every compare-and-swap inside takes a row
// lock first, so that writers on other connections or instances wait and then see the new row.
func (db *DB) writeTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}
