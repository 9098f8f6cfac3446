// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/store"
)

// keepHistory adds the commit's manifest and sealed records to the history, inside the commit's
// transaction, then prunes the history of the names written down to c.KeepVersions versions.
func (db *DB) keepHistory(ctx context.Context, tx *sql.Tx, c *store.Commit) error {
	if _, err := db.ws.txExec(ctx, tx, `INSERT INTO manifest_history (env_id, seq, manifest, manifest_sig, actor, at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.EnvID, c.Seq, c.Manifest, c.ManifestSig, c.Actor, micro(c.At)); err != nil {
		return err
	}
	if len(c.Put) == 0 {
		return nil
	}
	put, err := db.ws.txStmt(ctx, tx, `INSERT INTO record_history (env_id, hash, blind, version, record) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (env_id, hash) DO NOTHING`)
	if err != nil {
		return err
	}
	for _, r := range c.Put {
		h := sha256.Sum256(r.Data)
		if _, err := put.ExecContext(ctx, c.EnvID, h[:], r.Blind, r.Version, r.Data); err != nil {
			return err
		}
	}
	if c.KeepVersions <= 0 {
		return nil
	}
	prune, err := db.ws.txStmt(ctx, tx, `DELETE FROM record_history WHERE env_id = ? AND blind = ?
		AND version <= (SELECT MAX(version) FROM record_history WHERE env_id = ? AND blind = ?) - ?`)
	if err != nil {
		return err
	}
	for _, r := range c.Put {
		if _, err := prune.ExecContext(ctx, c.EnvID, r.Blind, c.EnvID, r.Blind, c.KeepVersions); err != nil {
			return err
		}
	}
	return nil
}

// EnvHistory implements [store.Store].
func (db *DB) EnvHistory(ctx context.Context, envID []byte) (*store.EnvHistory, error) {
	const op = "read env history"
	tx, err := db.rs.begin(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer tx.Rollback()
	h := &store.EnvHistory{}
	if err := db.rs.txQueryRow(ctx, tx, `SELECT a.account_id FROM envs e JOIN apps a ON a.id = e.app_id WHERE e.id = ?`,
		envID).Scan(&h.AccountID); err != nil {
		return nil, sqlErr(op, err)
	}
	rows, err := db.rs.txQuery(ctx, tx, `SELECT seq, manifest, manifest_sig, actor, at FROM manifest_history
		WHERE env_id = ? ORDER BY seq`, envID)
	if err != nil {
		return nil, sqlErr(op, err)
	}
	for rows.Next() {
		var m store.ManifestVersion
		var at int64
		if err := rows.Scan(&m.Seq, &m.Manifest, &m.ManifestSig, &m.Actor, &at); err != nil {
			rows.Close()
			return nil, sqlErr(op, err)
		}
		m.At = fromMicro(at)
		h.Manifests = append(h.Manifests, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, sqlErr(op, err)
	}
	rows, err = db.rs.txQuery(ctx, tx, `SELECT epoch, wrapped_ek FROM env_keys WHERE env_id = ? ORDER BY epoch`, envID)
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k store.EpochKey
		if err := rows.Scan(&k.Epoch, &k.WrappedEK); err != nil {
			return nil, sqlErr(op, err)
		}
		h.Keys = append(h.Keys, k)
	}
	return h, sqlErr(op, rows.Err())
}

// HistoryRecords implements [store.Store].
func (db *DB) HistoryRecords(ctx context.Context, envID []byte, hashes [][]byte) ([]store.Record, error) {
	const op = "read history records"
	tx, err := db.rs.begin(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer tx.Rollback()
	out := make([]store.Record, 0, len(hashes))
	for _, h := range hashes {
		var r store.Record
		err := db.rs.txQueryRow(ctx, tx, `SELECT blind, version, hash, record FROM record_history WHERE env_id = ? AND hash = ?`,
			envID, h).Scan(&r.Blind, &r.Version, &r.Hash, &r.Data)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, sqlErr(op, err)
		}
		r.Size = len(r.Data)
		out = append(out, r)
	}
	return out, nil
}

// AuditPage implements [store.Store].
func (db *DB) AuditPage(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	const op = "list audit"
	before := q.BeforeID
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := db.rs.query(ctx, `SELECT id, account_id, at, actor, action, target, remote_addr, result FROM audit
		WHERE account_id = ? AND id < ? AND at >= ? AND (? = '' OR target = ?) ORDER BY id DESC LIMIT ?`,
		q.AccountID, before, micro(q.Since), q.Target, q.Target, q.Limit)
	if err != nil {
		return nil, sqlErr(op, err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &e.AccountID, &at, &e.Actor, &e.Action, &e.Target, &e.RemoteAddr, &e.Result); err != nil {
			return nil, sqlErr(op, err)
		}
		e.Time = fromMicro(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr(op, fmt.Errorf("scan: %w", err))
	}
	return out, nil
}
