// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// SQLDBs returns the database handles by role, for the server's connection-pool metrics.
func (db *DB) SQLDBs() map[string]*sql.DB { return map[string]*sql.DB{"writer": db.w, "reader": db.r} }

// auditChunk is how many entries one INSERT statement appends.
const auditChunk = 64

// AppendAuditBatch implements [store.Store]: multi-row INSERTs in one transaction. The writer is
// the only one, so the rows of one statement get consecutive ids ending at its last insert id.
func (db *DB) AppendAuditBatch(ctx context.Context, es []*store.AuditEntry) error {
	const op = "append audit batch"
	if len(es) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	ids := make([]int64, len(es))
	args := make([]any, 0, 7*auditChunk)
	for start := 0; start < len(es); start += auditChunk {
		chunk := es[start:min(start+auditChunk, len(es))]
		args = args[:0]
		for _, e := range chunk {
			var acct any
			if len(e.AccountID) > 0 {
				acct = e.AccountID
			}
			args = append(args, acct, micro(e.Time), e.Actor, e.Action, e.Target, e.RemoteAddr, e.Result)
		}
		res, err := tx.ExecContext(ctx, auditInsert(len(chunk)), args...)
		if err != nil {
			return sqlErr(op, err)
		}
		last, err := res.LastInsertId()
		if err != nil {
			return sqlErr(op, err)
		}
		for i := range chunk {
			ids[start+i] = last - int64(len(chunk)-1-i)
		}
	}
	if err := tx.Commit(); err != nil {
		return sqlErr(op, err)
	}
	for i, e := range es {
		e.ID = ids[i]
	}
	return nil
}

var auditInserts [auditChunk + 1]string

func init() {
	for n := 1; n <= auditChunk; n++ {
		q := `INSERT INTO audit (account_id, at, actor, action, target, remote_addr, result) VALUES (?, ?, ?, ?, ?, ?, ?)`
		auditInserts[n] = q + strings.Repeat(`, (?, ?, ?, ?, ?, ?, ?)`, n-1)
	}
}

func auditInsert(n int) string { return auditInserts[n] }

// MachineLive implements [store.Store].
func (db *DB) MachineLive(ctx context.Context, id, verifier []byte) (bool, error) {
	var live bool
	if err := prepared(ctx, db.r, `SELECT EXISTS (SELECT 1 FROM machines WHERE id = ? AND verifier = ?)`, id, verifier).Scan(&live); err != nil {
		return false, sqlErr("check machine", err)
	}
	return live, nil
}

// EnvHead implements [store.Store].
func (db *DB) EnvHead(ctx context.Context, envID, machineID, machineVerifier []byte) (*store.EnvHead, error) {
	var h store.EnvHead
	var updated int64
	err := prepared(ctx, db.r, `SELECT a.account_id, e.seq, e.epoch, e.manifest_sig, e.updated_at,
		(SELECT w.wrap FROM machine_wraps w WHERE w.machine_id = ?1 AND w.env_id = e.id AND w.epoch = e.epoch),
		EXISTS (SELECT 1 FROM machines m WHERE m.id = ?1 AND m.verifier = ?2),
		s.raw, s.sig
		FROM envs e JOIN apps a ON a.id = e.app_id
		LEFT JOIN signed_objects s ON s.account_id = a.account_id AND s.kind = ?4 AND s.key = lower(hex(e.id)) || '/' || e.epoch
		WHERE e.id = ?3`, machineID, machineVerifier, envID, store.EnvAccessKind).
		Scan(&h.AccountID, &h.Seq, &h.Epoch, &h.ManifestSig, &updated, &h.MachineWrap, &h.MachineLive, &h.AccessRaw, &h.AccessSig)
	if err != nil {
		return nil, sqlErr("read env head", err)
	}
	h.UpdatedAt = fromMicro(updated)
	return &h, nil
}

// extStmts holds the prepared statements of this file's hot queries, by pool and query text.
// database/sql prepares a statement once per connection and reuses it; without this, SQLite parses
// and plans the query again on every call. (To fold into the package's statement cache.)
var extStmts sync.Map // stmtKey → *sql.Stmt

type stmtKey struct {
	db *sql.DB
	q  string
}

type scanner interface{ Scan(...any) error }

type errScanner struct{ err error }

func (e errScanner) Scan(...any) error { return e.err }

func prepared(ctx context.Context, db *sql.DB, q string, args ...any) scanner {
	st, err := preparedStmt(ctx, db, q)
	if err != nil {
		return errScanner{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// preparedStmt returns the statement q prepared on the pool db, once per pool.
func preparedStmt(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	k := stmtKey{db, q}
	st, ok := extStmts.Load(k)
	if !ok {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, err
		}
		if st, ok = extStmts.LoadOrStore(k, s); ok {
			s.Close()
		}
	}
	return st.(*sql.Stmt), nil
}

// Usage implements [store.Store].
func (db *DB) Usage(ctx context.Context, accountID []byte) (*store.Usage, error) {
	var u store.Usage
	err := db.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM apps WHERE account_id = ?1),
		(SELECT COUNT(*) FROM envs e JOIN apps a ON a.id = e.app_id WHERE a.account_id = ?1),
		(SELECT COUNT(*) FROM records r JOIN envs e ON e.id = r.env_id JOIN apps a ON a.id = e.app_id WHERE a.account_id = ?1),
		(SELECT COALESCE(SUM(length(r.record)), 0) FROM records r JOIN envs e ON e.id = r.env_id JOIN apps a ON a.id = e.app_id WHERE a.account_id = ?1),
		(SELECT COUNT(*) FROM machines WHERE account_id = ?1),
		(SELECT COUNT(*) FROM devices WHERE account_id = ?1 AND revoked_at IS NULL)`, accountID).
		Scan(&u.Apps, &u.Envs, &u.Secrets, &u.Bytes, &u.Machines, &u.Devices)
	if err != nil {
		return nil, sqlErr("count usage", err)
	}
	return &u, nil
}

// CreateInvite implements [store.Store].
func (db *DB) CreateInvite(ctx context.Context, inv *store.Invite) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO invites (id, verifier, note, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		inv.ID, inv.Verifier, inv.Note, micro(inv.CreatedAt), nullMicro(inv.ExpiresAt))
	return sqlErr("create invite", err)
}

// Invites implements [store.Store].
func (db *DB) Invites(ctx context.Context) ([]store.Invite, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, verifier, note, created_at, expires_at, used_at, used_by, revoked_at
		FROM invites ORDER BY created_at, id`)
	if err != nil {
		return nil, sqlErr("list invites", err)
	}
	defer rows.Close()
	var out []store.Invite
	for rows.Next() {
		var inv store.Invite
		var created int64
		var expires, used, revoked sql.NullInt64
		if err := rows.Scan(&inv.ID, &inv.Verifier, &inv.Note, &created, &expires, &used, &inv.UsedBy, &revoked); err != nil {
			return nil, sqlErr("list invites", err)
		}
		inv.CreatedAt, inv.ExpiresAt, inv.UsedAt, inv.RevokedAt = fromMicro(created), fromNullMicro(expires), fromNullMicro(used), fromNullMicro(revoked)
		out = append(out, inv)
	}
	return out, sqlErr("list invites", rows.Err())
}

// RevokeInvite implements [store.Store].
func (db *DB) RevokeInvite(ctx context.Context, id []byte, at time.Time) error {
	const op = "revoke invite"
	res, err := db.w.ExecContext(ctx, `UPDATE invites SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND used_at IS NULL`, micro(at), id)
	if err != nil {
		return sqlErr(op, err)
	}
	return mustAffect(res, op)
}

// CreateAccountInvited implements [store.Store].
func (db *DB) CreateAccountInvited(ctx context.Context, a *store.Account, first *store.Device, inviteVerifier []byte) error {
	const op = "create account"
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return sqlErr(op, err)
	}
	defer tx.Rollback()
	// The account goes first: the invite's used_by refers to it.
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, store.NormalizeEmail(a.Email), a.KDF.T, a.KDF.M, a.KDF.P, a.KDF.Salt, a.WrappedAK, a.AKVersion, a.KeyCheck,
		a.LoginVerifier, a.WrappedSignSeed, a.SignPub, micro(a.CreatedAt), micro(a.CreatedAt)); err != nil {
		return sqlErr(op, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE invites SET used_at = ?, used_by = ? WHERE verifier = ? AND used_at IS NULL
		AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`, micro(a.CreatedAt), a.ID, inviteVerifier, micro(a.CreatedAt))
	if err != nil {
		return sqlErr(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sqlErr(op, err)
	} else if n == 0 {
		return fmt.Errorf("%s: invite unknown, used, revoked or expired: %w", op, store.ErrNotFound)
	}
	if first != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			first.KeyID, a.ID, first.Verifier, first.Name, micro(first.CreatedAt), nullMicro(first.LastUsedAt), nullMicro(first.RevokedAt)); err != nil {
			return sqlErr(op, err)
		}
	}
	return sqlErr(op, tx.Commit())
}
