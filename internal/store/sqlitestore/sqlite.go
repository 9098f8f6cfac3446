// SPDX-License-Identifier: Apache-2.0

// Package sqlitestore implements [store.Store] on SQLite through modernc.org/sqlite (pure Go, no
// cgo): one database file in WAL mode, one writer connection whose transactions start with BEGIN
// IMMEDIATE, a pool of read-only connections for consistent snapshots, foreign keys on, and
// numbered schema migrations recorded in a schema_version table.
//
// It stores ciphertext, verifiers and public keys only. It never sees key material.
package sqlitestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/opaquevault/opaquevault/internal/store"
)

// ErrSchemaTooNew means the database was written by a newer program: opening it is refused rather
// than risking a downgrade.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// LatestSchema is the schema version this package writes.
func LatestSchema() int { return len(migrations) }

// DB is a [store.Store] on one SQLite file.
type DB struct {
	path string
	w    *sql.DB // exactly one connection; BEGIN IMMEDIATE
	r    *sql.DB // read-only connections
	ws   *stmts  // prepared statements of w
	rs   *stmts  // prepared statements of r

	secretMu sync.Mutex
	secret   []byte
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and brings its schema up to date. A
// missing directory is created 0700 and a missing file 0600; an existing file readable or
// writable by group or others is refused. Errors wrap [ErrSchemaTooNew] when the file comes from
// a newer schema.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open database %q: path must not contain '?' or '#'", path)
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	// The writer: one connection, so our own writers queue in Go instead of spinning on
	// SQLITE_BUSY; busy_timeout covers other processes (backup tools, a second server).
	w, err := sql.Open("sqlite", path+"?_txlock=immediate"+
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	db := &DB{path: path, w: w, ws: newStmts(w)}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	db.r, db.rs = r, newStmts(r)
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// prepareFile creates the directory (0700) and the file (0600) if missing, and refuses an existing
// file that is not a regular file or that group or others may read.
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create database: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open database %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("open database %s: mode %04o gives access to group or others: want 0600", path, fi.Mode().Perm())
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate database %s: %w", db.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate database %s: %w", db.path, err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate database %s: %w", db.path, err)
	}
	if cur > len(migrations) {
		return fmt.Errorf("open database %s: schema version %d, this program knows up to %d: %w", db.path, cur, len(migrations), ErrSchemaTooNew)
	}
	if cur == len(migrations) {
		return nil
	}
	for v := cur; v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate database %s to version %d: %w", db.path, v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, v+1, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate database %s to version %d: %w", db.path, v+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate database %s: %w", db.path, err)
	}
	return nil
}

// SchemaVersion returns the schema version recorded in the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.rs.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Ping implements [store.Store].
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.rs.queryRow(ctx, `SELECT 1 FROM schema_version LIMIT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close implements [store.Store].
func (db *DB) Close() error {
	var errs []error
	if db.rs != nil {
		errs = append(errs, db.rs.close())
	}
	errs = append(errs, db.ws.close())
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	return errors.Join(errs...)
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
	if _, err := db.ws.exec(ctx, `INSERT INTO meta (key, value) VALUES ('server_secret', ?) ON CONFLICT (key) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("create server secret: %w", err)
	}
	var v []byte
	if err := db.ws.queryRow(ctx, `SELECT value FROM meta WHERE key = 'server_secret'`).Scan(&v); err != nil {
		return nil, fmt.Errorf("read server secret: %w", err)
	}
	if len(v) != 32 {
		return nil, fmt.Errorf("read server secret: %d bytes, want 32", len(v))
	}
	db.secret = v
	return bytes.Clone(v), nil
}

// sqlErr maps constraint failures to the store's sentinels.
func sqlErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%s: %w", op, store.ErrExists)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%s: %w", op, store.ErrNotFound)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func micro(t time.Time) int64 { return t.UnixMicro() }

func nullMicro(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicro(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicro(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func mustAffect(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// ---- accounts ----

const accountCols = `id, email, kdf_t, kdf_m, kdf_p, kdf_salt, wrapped_ak, ak_version, key_check,
	login_verifier, wrapped_sign_seed, sign_pub, created_at, updated_at`

func scanAccount(row row) (*store.Account, error) {
	var a store.Account
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Email, &a.KDF.T, &a.KDF.M, &a.KDF.P, &a.KDF.Salt, &a.WrappedAK, &a.AKVersion,
		&a.KeyCheck, &a.LoginVerifier, &a.WrappedSignSeed, &a.SignPub, &created, &updated); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = fromMicro(created), fromMicro(updated)
	return &a, nil
}

// CreateAccount implements [store.Store].
func (db *DB) CreateAccount(ctx context.Context, a *store.Account, first *store.Device) error {
	const op = "create account"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	if _, err := db.ws.txExec(ctx, tx, `INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, store.NormalizeEmail(a.Email), a.KDF.T, a.KDF.M, a.KDF.P, a.KDF.Salt, a.WrappedAK, a.AKVersion, a.KeyCheck,
		a.LoginVerifier, a.WrappedSignSeed, a.SignPub, micro(a.CreatedAt), micro(a.CreatedAt)); err != nil {
		return sqlErr(op, err)
	}
	if first != nil {
		if err := db.insertDevice(ctx, tx, first, a.ID); err != nil {
			return sqlErr(op, err)
		}
	}
	return sqlErr(op, tx.Commit())
}

// Account implements [store.Store].
func (db *DB) Account(ctx context.Context, id []byte) (*store.Account, error) {
	a, err := scanAccount(db.rs.queryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if err != nil {
		return nil, sqlErr("read account", err)
	}
	return a, nil
}

// AccountByEmail implements [store.Store].
func (db *DB) AccountByEmail(ctx context.Context, email string) (*store.Account, error) {
	a, err := scanAccount(db.rs.queryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE email = ?`, store.NormalizeEmail(email)))
	if err != nil {
		return nil, sqlErr("read account", err)
	}
	return a, nil
}

// ChangePassword implements [store.Store].
func (db *DB) ChangePassword(ctx context.Context, c *store.PasswordChange) error {
	const op = "change password"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	var cur []byte
	if err := db.ws.txQueryRow(ctx, tx, `SELECT login_verifier FROM accounts WHERE id = ?`, c.AccountID).Scan(&cur); err != nil {
		return sqlErr(op, err)
	}
	if subtle.ConstantTimeCompare(cur, c.OldLoginVerifier) != 1 {
		return fmt.Errorf("%s: login verifier changed: %w", op, store.ErrConflict)
	}
	if _, err := db.ws.txExec(ctx, tx, `UPDATE accounts SET kdf_t = ?, kdf_m = ?, kdf_p = ?, kdf_salt = ?, wrapped_ak = ?,
		ak_version = ?, key_check = ?, login_verifier = ?, updated_at = ? WHERE id = ?`,
		c.KDF.T, c.KDF.M, c.KDF.P, c.KDF.Salt, c.WrappedAK, c.AKVersion, c.KeyCheck, c.LoginVerifier, micro(c.At), c.AccountID); err != nil {
		return sqlErr(op, err)
	}
	if c.RevokeMachines {
		if _, err := db.ws.txExec(ctx, tx, `DELETE FROM machines WHERE account_id = ?`, c.AccountID); err != nil {
			return sqlErr(op, err)
		}
	}
	return sqlErr(op, tx.Commit())
}

// ---- devices ----

const deviceCols = `key_id, account_id, verifier, name, created_at, last_used_at, revoked_at`

func (db *DB) insertDevice(ctx context.Context, tx *sql.Tx, d *store.Device, accountID []byte) error {
	_, err := db.ws.txExec(ctx, tx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.KeyID, accountID, d.Verifier, d.Name, micro(d.CreatedAt), nullMicro(d.LastUsedAt), nullMicro(d.RevokedAt))
	return err
}

func scanDevice(row row) (*store.Device, error) {
	var d store.Device
	var created int64
	var used, revoked sql.NullInt64
	if err := row.Scan(&d.KeyID, &d.AccountID, &d.Verifier, &d.Name, &created, &used, &revoked); err != nil {
		return nil, err
	}
	d.CreatedAt, d.LastUsedAt, d.RevokedAt = fromMicro(created), fromNullMicro(used), fromNullMicro(revoked)
	return &d, nil
}

// AddDevice implements [store.Store].
func (db *DB) AddDevice(ctx context.Context, d *store.Device) error {
	const op = "add device"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	if err := db.insertDevice(ctx, tx, d, d.AccountID); err != nil {
		return sqlErr(op, err)
	}
	return sqlErr(op, tx.Commit())
}

// Device implements [store.Store].
func (db *DB) Device(ctx context.Context, keyID []byte) (*store.Device, error) {
	d, err := scanDevice(db.rs.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE key_id = ?`, keyID))
	if err != nil {
		return nil, sqlErr("read device", err)
	}
	return d, nil
}

// Devices implements [store.Store].
func (db *DB) Devices(ctx context.Context, accountID []byte) ([]store.Device, error) {
	rows, err := db.rs.query(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? ORDER BY created_at, key_id`, accountID)
	if err != nil {
		return nil, sqlErr("list devices", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, sqlErr("list devices", err)
		}
		out = append(out, *d)
	}
	return out, sqlErr("list devices", rows.Err())
}

// TouchDevice implements [store.Store].
func (db *DB) TouchDevice(ctx context.Context, keyID []byte, at time.Time) error {
	res, err := db.ws.exec(ctx, `UPDATE devices SET last_used_at = ? WHERE key_id = ?`, micro(at), keyID)
	if err != nil {
		return sqlErr("touch device", err)
	}
	return mustAffect(res, "touch device")
}

// RevokeDevice implements [store.Store].
func (db *DB) RevokeDevice(ctx context.Context, accountID, keyID []byte, at time.Time) error {
	res, err := db.ws.exec(ctx, `UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ? AND account_id = ?`,
		micro(at), keyID, accountID)
	if err != nil {
		return sqlErr("revoke device", err)
	}
	return mustAffect(res, "revoke device")
}

// ---- apps and envs ----

// CreateApp implements [store.Store].
func (db *DB) CreateApp(ctx context.Context, a *store.App) error {
	_, err := db.ws.exec(ctx, `INSERT INTO apps (id, account_id, name, created_at) VALUES (?, ?, ?, ?)`,
		a.ID, a.AccountID, a.Name, micro(a.CreatedAt))
	return sqlErr("create app", err)
}

const envCols = `e.id, e.app_id, a.account_id, a.name, e.name, e.epoch, k.wrapped_ek, e.seq, e.manifest, e.manifest_sig,
	e.record_count, e.created_at, e.updated_at`

const envFrom = ` FROM envs e JOIN apps a ON a.id = e.app_id LEFT JOIN env_keys k ON k.env_id = e.id AND k.epoch = e.epoch`

func scanEnv(row row) (*store.Env, error) {
	var e store.Env
	var created, updated int64
	if err := row.Scan(&e.ID, &e.AppID, &e.AccountID, &e.AppName, &e.Name, &e.Epoch, &e.WrappedEK, &e.Seq, &e.Manifest,
		&e.ManifestSig, &e.Count, &created, &updated); err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = fromMicro(created), fromMicro(updated)
	return &e, nil
}

// Apps implements [store.Store].
func (db *DB) Apps(ctx context.Context, accountID []byte) ([]store.App, error) {
	const op = "list apps"
	tx, err := db.rs.begin(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer tx.Rollback()
	rows, err := db.rs.txQuery(ctx, tx, `SELECT id, account_id, name, created_at FROM apps WHERE account_id = ? ORDER BY name`, accountID)
	if err != nil {
		return nil, sqlErr(op, err)
	}
	var apps []store.App
	idx := map[string]int{}
	for rows.Next() {
		var a store.App
		var created int64
		if err := rows.Scan(&a.ID, &a.AccountID, &a.Name, &created); err != nil {
			rows.Close()
			return nil, sqlErr(op, err)
		}
		a.CreatedAt = fromMicro(created)
		idx[string(a.ID)] = len(apps)
		apps = append(apps, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, sqlErr(op, err)
	}
	rows, err = db.rs.txQuery(ctx, tx, `SELECT `+envCols+envFrom+` WHERE a.account_id = ? ORDER BY e.name`, accountID)
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEnv(rows)
		if err != nil {
			return nil, sqlErr(op, err)
		}
		if i, ok := idx[string(e.AppID)]; ok {
			apps[i].Envs = append(apps[i].Envs, *e)
		}
	}
	return apps, sqlErr(op, rows.Err())
}

// CreateEnv implements [store.Store].
func (db *DB) CreateEnv(ctx context.Context, e *store.Env) error {
	const op = "create env"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	var acct []byte
	if err := db.ws.txQueryRow(ctx, tx, `SELECT account_id FROM apps WHERE id = ?`, e.AppID).Scan(&acct); err != nil {
		return sqlErr(op, err)
	}
	if !bytes.Equal(acct, e.AccountID) {
		return fmt.Errorf("%s: app: %w", op, store.ErrNotFound)
	}
	if _, err := db.ws.txExec(ctx, tx, `INSERT INTO envs (id, app_id, name, epoch, seq, record_count, created_at, updated_at)
		VALUES (?, ?, ?, ?, 0, 0, ?, ?)`, e.ID, e.AppID, e.Name, e.Epoch, micro(e.CreatedAt), micro(e.CreatedAt)); err != nil {
		return sqlErr(op, err)
	}
	if _, err := db.ws.txExec(ctx, tx, `INSERT INTO env_keys (env_id, epoch, wrapped_ek, created_at) VALUES (?, ?, ?, ?)`,
		e.ID, e.Epoch, e.WrappedEK, micro(e.CreatedAt)); err != nil {
		return sqlErr(op, err)
	}
	return sqlErr(op, tx.Commit())
}

// ReadEnv implements [store.Store].
func (db *DB) ReadEnv(ctx context.Context, envID []byte, opt store.ReadOptions) (*store.EnvView, error) {
	const op = "read env"
	tx, err := db.rs.begin(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer tx.Rollback()
	e, err := scanEnv(db.rs.txQueryRow(ctx, tx, `SELECT `+envCols+envFrom+` WHERE e.id = ?`, envID))
	if err != nil {
		return nil, sqlErr(op, err)
	}
	v := &store.EnvView{Env: *e}
	if opt.Records != store.RecordsNone {
		q := `SELECT blind, version, hash, length(record) FROM records WHERE env_id = ? ORDER BY blind`
		if opt.Records == store.RecordsFull {
			q = `SELECT blind, version, hash, length(record), record FROM records WHERE env_id = ? ORDER BY blind`
		}
		rows, err := db.rs.txQuery(ctx, tx, q, envID)
		if err != nil {
			return nil, sqlErr(op, err)
		}
		v.Records = make([]store.Record, 0, e.Count)
		for rows.Next() {
			var r store.Record
			dst := []any{&r.Blind, &r.Version, &r.Hash, &r.Size}
			if opt.Records == store.RecordsFull {
				dst = append(dst, &r.Data)
			}
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return nil, sqlErr(op, err)
			}
			v.Records = append(v.Records, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, sqlErr(op, err)
		}
	}
	if opt.MachineID != nil {
		err := db.rs.txQueryRow(ctx, tx, `SELECT wrap FROM machine_wraps WHERE machine_id = ? AND env_id = ? AND epoch = ?`,
			opt.MachineID, envID, e.Epoch).Scan(&v.MachineWrap)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, sqlErr(op, err)
		}
	}
	return v, nil
}

// CommitEnv implements [store.Store].
func (db *DB) CommitEnv(ctx context.Context, c *store.Commit) error {
	const op = "commit env"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()

	// The compare-and-swap comes first, so that on databases with row locks a concurrent writer
	// waits here and then finds the sequence moved.
	epoch := sql.NullInt64{}
	if c.Rotate != nil {
		epoch = sql.NullInt64{Int64: int64(c.Rotate.Epoch), Valid: true}
	}
	res, err := db.ws.txExec(ctx, tx, `UPDATE envs SET seq = ?, manifest = ?, manifest_sig = ?, epoch = COALESCE(?, epoch), updated_at = ?
		WHERE id = ? AND seq = ?`, c.Seq, c.Manifest, c.ManifestSig, epoch, micro(c.At), c.EnvID, c.ExpectedSeq)
	if err != nil {
		return sqlErr(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sqlErr(op, err)
	} else if n == 0 {
		var seq uint64
		if err := db.ws.txQueryRow(ctx, tx, `SELECT seq FROM envs WHERE id = ?`, c.EnvID).Scan(&seq); err != nil {
			return sqlErr(op, err)
		}
		return fmt.Errorf("%s: seq is %d, not %d: %w", op, seq, c.ExpectedSeq, store.ErrConflict)
	}
	var acct []byte
	if err := db.ws.txQueryRow(ctx, tx, `SELECT a.account_id FROM envs e JOIN apps a ON a.id = e.app_id WHERE e.id = ?`, c.EnvID).Scan(&acct); err != nil {
		return sqlErr(op, err)
	}

	if c.Rotate != nil {
		if _, err := db.ws.txExec(ctx, tx, `DELETE FROM records WHERE env_id = ?`, c.EnvID); err != nil {
			return sqlErr(op, err)
		}
		if _, err := db.ws.txExec(ctx, tx, `INSERT INTO env_keys (env_id, epoch, wrapped_ek, created_at) VALUES (?, ?, ?, ?)`,
			c.EnvID, c.Rotate.Epoch, c.Rotate.WrappedEK, micro(c.At)); err != nil {
			if errors.Is(sqlErr(op, err), store.ErrExists) {
				return fmt.Errorf("%s: epoch %d already used: %w", op, c.Rotate.Epoch, store.ErrConflict)
			}
			return sqlErr(op, err)
		}
		if _, err := db.ws.txExec(ctx, tx, `DELETE FROM machine_wraps WHERE env_id = ?`, c.EnvID); err != nil {
			return sqlErr(op, err)
		}
	} else if len(c.Delete) > 0 {
		del, err := db.ws.txStmt(ctx, tx, `DELETE FROM records WHERE env_id = ? AND blind = ?`)
		if err != nil {
			return sqlErr(op, err)
		}
		for _, b := range c.Delete {
			if _, err := del.ExecContext(ctx, c.EnvID, b); err != nil {
				return sqlErr(op, err)
			}
		}
	}
	if len(c.Put) > 0 {
		put, err := db.ws.txStmt(ctx, tx, `INSERT INTO records (env_id, blind, version, hash, record) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (env_id, blind) DO UPDATE SET version = excluded.version, hash = excluded.hash, record = excluded.record`)
		if err != nil {
			return sqlErr(op, err)
		}
		for _, r := range c.Put {
			h := sha256.Sum256(r.Data)
			if _, err := put.ExecContext(ctx, c.EnvID, r.Blind, r.Version, h[:], r.Data); err != nil {
				return sqlErr(op, err)
			}
		}
	}
	for _, id := range c.RevokeMachines {
		res, err := db.ws.txExec(ctx, tx, `DELETE FROM machines WHERE id = ? AND account_id = ?`, id, acct)
		if err != nil {
			return sqlErr(op, err)
		}
		if err := mustAffect(res, op+": revoke machine"); err != nil {
			return err
		}
	}
	if c.Rotate != nil {
		for i := range c.Rotate.MachineWraps {
			w := c.Rotate.MachineWraps[i]
			if !bytes.Equal(w.EnvID, c.EnvID) {
				return fmt.Errorf("%s: machine wrap for another env: %w", op, store.ErrNotFound)
			}
			if err := db.insertWrap(ctx, tx, acct, &w); err != nil {
				return sqlErr(op, err)
			}
		}
	}
	if _, err := db.ws.txExec(ctx, tx, `UPDATE envs SET record_count = (SELECT COUNT(*) FROM records WHERE env_id = ?) WHERE id = ?`,
		c.EnvID, c.EnvID); err != nil {
		return sqlErr(op, err)
	}
	if err := db.keepHistory(ctx, tx, c); err != nil {
		return sqlErr(op, err)
	}
	return sqlErr(op, tx.Commit())
}

// insertWrap stores a machine wrap if the machine and the env (of w.AppID) both belong to account.
func (db *DB) insertWrap(ctx context.Context, tx *sql.Tx, account []byte, w *store.MachineWrap) error {
	res, err := db.ws.txExec(ctx, tx, `INSERT INTO machine_wraps (machine_id, app_id, env_id, epoch, wrap)
		SELECT ?, ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM machines WHERE id = ? AND account_id = ?)
		  AND EXISTS (SELECT 1 FROM envs e JOIN apps a ON a.id = e.app_id WHERE e.id = ? AND a.id = ? AND a.account_id = ?)`,
		w.MachineID, w.AppID, w.EnvID, w.Epoch, w.Wrap, w.MachineID, account, w.EnvID, w.AppID, account)
	if err != nil {
		return err
	}
	return mustAffect(res, "store machine wrap")
}

// ---- machines ----

const machineCols = `id, account_id, verifier, x_pub, grant_bytes, grant_sig, pin_sign_pub, pin_mac, not_after, label,
	account_wrap, ak_version, created_at, last_seen_at`

func scanMachine(row row) (*store.Machine, error) {
	var m store.Machine
	var notAfter, seen sql.NullInt64
	var created int64
	if err := row.Scan(&m.ID, &m.AccountID, &m.Verifier, &m.XPub, &m.Grant, &m.GrantSig, &m.PinSignPub, &m.PinMAC,
		&notAfter, &m.Label, &m.AccountWrap, &m.AKVersion, &created, &seen); err != nil {
		return nil, err
	}
	m.NotAfter, m.CreatedAt, m.LastSeenAt = fromNullMicro(notAfter), fromMicro(created), fromNullMicro(seen)
	return &m, nil
}

// CreateMachine implements [store.Store].
func (db *DB) CreateMachine(ctx context.Context, m *store.Machine, wraps []store.MachineWrap) error {
	const op = "create machine"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	var accountWrap any
	if len(m.AccountWrap) > 0 {
		accountWrap = m.AccountWrap
	}
	if _, err := db.ws.txExec(ctx, tx, `INSERT INTO machines (`+machineCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.AccountID, m.Verifier, m.XPub, m.Grant, m.GrantSig, m.PinSignPub, m.PinMAC, nullMicro(m.NotAfter), m.Label,
		accountWrap, m.AKVersion, micro(m.CreatedAt), nullMicro(m.LastSeenAt)); err != nil {
		return sqlErr(op, err)
	}
	for i := range wraps {
		w := wraps[i]
		w.MachineID = m.ID
		if err := db.insertWrap(ctx, tx, m.AccountID, &w); err != nil {
			return sqlErr(op, err)
		}
	}
	return sqlErr(op, tx.Commit())
}

// Machine implements [store.Store].
func (db *DB) Machine(ctx context.Context, id []byte) (*store.Machine, error) {
	m, err := scanMachine(db.rs.queryRow(ctx, `SELECT `+machineCols+` FROM machines WHERE id = ?`, id))
	if err != nil {
		return nil, sqlErr("read machine", err)
	}
	return m, nil
}

// Machines implements [store.Store].
func (db *DB) Machines(ctx context.Context, accountID []byte) ([]store.Machine, error) {
	rows, err := db.rs.query(ctx, `SELECT `+machineCols+` FROM machines WHERE account_id = ? ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, sqlErr("list machines", err)
	}
	defer rows.Close()
	var out []store.Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, sqlErr("list machines", err)
		}
		out = append(out, *m)
	}
	return out, sqlErr("list machines", rows.Err())
}

// MachineWraps implements [store.Store].
func (db *DB) MachineWraps(ctx context.Context, machineID []byte) ([]store.MachineWrap, error) {
	rows, err := db.rs.query(ctx, `SELECT machine_id, app_id, env_id, epoch, wrap FROM machine_wraps WHERE machine_id = ?
		ORDER BY env_id, epoch`, machineID)
	if err != nil {
		return nil, sqlErr("list machine wraps", err)
	}
	defer rows.Close()
	var out []store.MachineWrap
	for rows.Next() {
		var w store.MachineWrap
		if err := rows.Scan(&w.MachineID, &w.AppID, &w.EnvID, &w.Epoch, &w.Wrap); err != nil {
			return nil, sqlErr("list machine wraps", err)
		}
		out = append(out, w)
	}
	return out, sqlErr("list machine wraps", rows.Err())
}

// TouchMachine implements [store.Store].
func (db *DB) TouchMachine(ctx context.Context, id []byte, at time.Time) error {
	res, err := db.ws.exec(ctx, `UPDATE machines SET last_seen_at = ? WHERE id = ?`, micro(at), id)
	if err != nil {
		return sqlErr("touch machine", err)
	}
	return mustAffect(res, "touch machine")
}

// DeleteMachine implements [store.Store].
func (db *DB) DeleteMachine(ctx context.Context, accountID, id []byte) error {
	res, err := db.ws.exec(ctx, `DELETE FROM machines WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return sqlErr("delete machine", err)
	}
	return mustAffect(res, "delete machine")
}

// ReplaceMachineWraps implements [store.Store].
func (db *DB) ReplaceMachineWraps(ctx context.Context, accountID, machineID []byte, wraps []store.MachineWrap) error {
	const op = "replace machine wraps"
	tx, err := db.ws.begin(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	var one int
	if err := db.ws.txQueryRow(ctx, tx, `SELECT 1 FROM machines WHERE id = ? AND account_id = ?`, machineID, accountID).Scan(&one); err != nil {
		return sqlErr(op, err)
	}
	if _, err := db.ws.txExec(ctx, tx, `DELETE FROM machine_wraps WHERE machine_id = ?`, machineID); err != nil {
		return sqlErr(op, err)
	}
	for i := range wraps {
		w := wraps[i]
		w.MachineID = machineID
		if err := db.insertWrap(ctx, tx, accountID, &w); err != nil {
			return sqlErr(op, err)
		}
	}
	return sqlErr(op, tx.Commit())
}

// ---- signed objects ----

// PutSigned implements [store.Store].
func (db *DB) PutSigned(ctx context.Context, o *store.SignedObject) error {
	const op = "put signed object"
	if o.Version > math.MaxInt64 {
		return fmt.Errorf("%s: version %d out of range", op, o.Version)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	var cur int64
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM signed_objects WHERE account_id = ? AND kind = ? AND key = ?`,
		o.AccountID, o.Kind, o.Key).Scan(&cur); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO signed_objects (account_id, kind, key, version, raw, sig, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.AccountID, o.Kind, o.Key, int64(o.Version), o.Raw, o.Sig, micro(o.UpdatedAt)); err != nil {
			return sqlErr(op, err)
		}
	case err != nil:
		return sqlErr(op, err)
	case uint64(cur) >= o.Version:
		return fmt.Errorf("%s: version %d is not above the stored %d: %w", op, o.Version, cur, store.ErrConflict)
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE signed_objects SET version = ?, raw = ?, sig = ?, updated_at = ? WHERE account_id = ? AND kind = ? AND key = ?`,
			int64(o.Version), o.Raw, o.Sig, micro(o.UpdatedAt), o.AccountID, o.Kind, o.Key); err != nil {
			return sqlErr(op, err)
		}
	}
	return sqlErr(op, tx.Commit())
}

// Signed implements [store.Store].
func (db *DB) Signed(ctx context.Context, accountID []byte, kind, key string) (*store.SignedObject, error) {
	o := &store.SignedObject{AccountID: bytes.Clone(accountID), Kind: kind, Key: key}
	var v, at int64
	err := db.r.QueryRowContext(ctx, `SELECT version, raw, sig, updated_at FROM signed_objects WHERE account_id = ? AND kind = ? AND key = ?`,
		accountID, kind, key).Scan(&v, &o.Raw, &o.Sig, &at)
	if err != nil {
		return nil, sqlErr("read signed object", err)
	}
	o.Version, o.UpdatedAt = uint64(v), fromMicro(at)
	return o, nil
}

// ---- audit ----

// AppendAudit implements [store.Store].
func (db *DB) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	var acct any
	if len(e.AccountID) > 0 {
		acct = e.AccountID
	}
	res, err := db.ws.exec(ctx, `INSERT INTO audit (account_id, at, actor, action, target, remote_addr, result)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, acct, micro(e.Time), e.Actor, e.Action, e.Target, e.RemoteAddr, e.Result)
	if err != nil {
		return sqlErr("append audit", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return sqlErr("append audit", err)
	}
	e.ID = id
	return nil
}

// Audit implements [store.Store].
func (db *DB) Audit(ctx context.Context, accountID []byte, limit int) ([]store.AuditEntry, error) {
	rows, err := db.rs.query(ctx, `SELECT id, account_id, at, actor, action, target, remote_addr, result FROM audit
		WHERE account_id = ? ORDER BY id DESC LIMIT ?`, accountID, limit)
	if err != nil {
		return nil, sqlErr("list audit", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &e.AccountID, &at, &e.Actor, &e.Action, &e.Target, &e.RemoteAddr, &e.Result); err != nil {
			return nil, sqlErr("list audit", err)
		}
		e.Time = fromMicro(at)
		out = append(out, e)
	}
	return out, sqlErr("list audit", rows.Err())
}
