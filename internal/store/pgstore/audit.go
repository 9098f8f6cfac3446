// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"

	"github.com/opaquevault/opaquevault/internal/store"
)

// AppendAudit implements [store.Store].
func (db *DB) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO audit (account_id, at, actor, action, target, remote_addr, result)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		nullBytes(e.AccountID), utc(e.Time), e.Actor, e.Action, e.Target, e.RemoteAddr, e.Result).Scan(&e.ID)
	return pgErr("append audit", err)
}

// Audit implements [store.Store].
func (db *DB) Audit(ctx context.Context, accountID []byte, limit int) ([]store.AuditEntry, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, account_id, at, actor, action, target, remote_addr, result FROM audit
		WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, accountID, limit)
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
