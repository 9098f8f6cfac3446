// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"
	"crypto/sha256"

	"github.com/jackc/pgx/v5"

	"github.com/opaquevault/opaquevault/internal/store"
)

// queueHistory queues, into the commit's batch, the manifest and sealed records of c for the
// history, then the pruning of the names written down to c.KeepVersions versions.
func queueHistory(b *pgx.Batch, c *store.Commit) {
	b.Queue(`INSERT INTO manifest_history (env_id, seq, manifest, manifest_sig, actor, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.EnvID, c.Seq, c.Manifest, c.ManifestSig, c.Actor, utc(c.At))
	for _, r := range c.Put {
		h := sha256.Sum256(r.Data)
		b.Queue(`INSERT INTO record_history (env_id, hash, blind, version, record) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (env_id, hash) DO NOTHING`, c.EnvID, h[:], r.Blind, r.Version, r.Data)
	}
	if c.KeepVersions <= 0 || len(c.Put) == 0 {
		return
	}
	blinds := make([][]byte, 0, len(c.Put))
	for _, r := range c.Put {
		blinds = append(blinds, r.Blind)
	}
	b.Queue(`DELETE FROM record_history h USING (
			SELECT blind, MAX(version) AS top FROM record_history WHERE env_id = $1 AND blind = ANY($2) GROUP BY blind
		) m WHERE h.env_id = $1 AND h.blind = m.blind AND h.version <= m.top - $3`, c.EnvID, blinds, int64(c.KeepVersions))
}

// EnvHistory implements [store.Store].
func (db *DB) EnvHistory(ctx context.Context, envID []byte) (*store.EnvHistory, error) {
	h := &store.EnvHistory{}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		h.Manifests, h.Keys = nil, nil
		if err := tx.QueryRow(ctx, `SELECT a.account_id FROM envs e JOIN apps a ON a.id = e.app_id WHERE e.id = $1`,
			envID).Scan(&h.AccountID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, manifest, manifest_sig, actor, at FROM manifest_history
			WHERE env_id = $1 ORDER BY seq`, envID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var m store.ManifestVersion
			if err := rows.Scan(&m.Seq, &m.Manifest, &m.ManifestSig, &m.Actor, &m.At); err != nil {
				rows.Close()
				return err
			}
			m.At = m.At.UTC()
			h.Manifests = append(h.Manifests, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT epoch, wrapped_ek FROM env_keys WHERE env_id = $1 ORDER BY epoch`, envID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k store.EpochKey
			if err := rows.Scan(&k.Epoch, &k.WrappedEK); err != nil {
				return err
			}
			h.Keys = append(h.Keys, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, pgErr("read env history", err)
	}
	return h, nil
}

// HistoryRecords implements [store.Store].
func (db *DB) HistoryRecords(ctx context.Context, envID []byte, hashes [][]byte) ([]store.Record, error) {
	rows, err := db.pool.Query(ctx, `SELECT blind, version, hash, record FROM record_history WHERE env_id = $1 AND hash = ANY($2)`,
		envID, hashes)
	if err != nil {
		return nil, pgErr("read history records", err)
	}
	defer rows.Close()
	out := make([]store.Record, 0, len(hashes))
	for rows.Next() {
		var r store.Record
		if err := rows.Scan(&r.Blind, &r.Version, &r.Hash, &r.Data); err != nil {
			return nil, pgErr("read history records", err)
		}
		r.Size = len(r.Data)
		out = append(out, r)
	}
	return out, pgErr("read history records", rows.Err())
}

// AuditPage implements [store.Store].
func (db *DB) AuditPage(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	before := q.BeforeID
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := db.pool.Query(ctx, `SELECT id, account_id, at, actor, action, target, remote_addr, result FROM audit
		WHERE account_id = $1 AND id < $2 AND at >= $3 AND ($4 = '' OR target = $4) ORDER BY id DESC LIMIT $5`,
		q.AccountID, before, utc(q.Since), q.Target, q.Limit)
	if err != nil {
		return nil, pgErr("list audit", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		if err := rows.Scan(&e.ID, &e.AccountID, &e.Time, &e.Actor, &e.Action, &e.Target, &e.RemoteAddr, &e.Result); err != nil {
			return nil, pgErr("list audit", err)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
	}
	return out, pgErr("list audit", rows.Err())
}
