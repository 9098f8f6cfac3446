// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opaquevault/opaquevault/internal/store"
)

const machineCols = `id, account_id, verifier, x_pub, grant_bytes, grant_sig, pin_sign_pub, pin_mac, not_after, label,
	account_wrap, ak_version, created_at, last_seen_at`

func scanMachine(row pgx.Row) (*store.Machine, error) {
	var m store.Machine
	var notAfter, seen *time.Time
	if err := row.Scan(&m.ID, &m.AccountID, &m.Verifier, &m.XPub, &m.Grant, &m.GrantSig, &m.PinSignPub, &m.PinMAC,
		&notAfter, &m.Label, &m.AccountWrap, &m.AKVersion, &m.CreatedAt, &seen); err != nil {
		return nil, err
	}
	m.NotAfter, m.CreatedAt, m.LastSeenAt = fromNull(notAfter), m.CreatedAt.UTC(), fromNull(seen)
	return &m, nil
}

// CreateMachine implements [store.Store].
func (db *DB) CreateMachine(ctx context.Context, m *store.Machine, wraps []store.MachineWrap) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO machines (`+machineCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			m.ID, m.AccountID, m.Verifier, m.XPub, m.Grant, m.GrantSig, m.PinSignPub, m.PinMAC, nullTime(m.NotAfter), m.Label,
			nullBytes(m.AccountWrap), m.AKVersion, utc(m.CreatedAt), nullTime(m.LastSeenAt))
		for i := range wraps {
			w := wraps[i]
			w.MachineID = m.ID
			queueWrap(b, m.AccountID, &w)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return pgErr("create machine", err)
}

// Machine implements [store.Store].
func (db *DB) Machine(ctx context.Context, id []byte) (*store.Machine, error) {
	m, err := scanMachine(db.pool.QueryRow(ctx, `SELECT `+machineCols+` FROM machines WHERE id = $1`, id))
	if err != nil {
		return nil, pgErr("read machine", err)
	}
	return m, nil
}

// Machines implements [store.Store].
func (db *DB) Machines(ctx context.Context, accountID []byte) ([]store.Machine, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+machineCols+` FROM machines WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, pgErr("list machines", err)
	}
	defer rows.Close()
	var out []store.Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, pgErr("list machines", err)
		}
		out = append(out, *m)
	}
	return out, pgErr("list machines", rows.Err())
}

// MachineWraps implements [store.Store].
func (db *DB) MachineWraps(ctx context.Context, machineID []byte) ([]store.MachineWrap, error) {
	rows, err := db.pool.Query(ctx, `SELECT machine_id, app_id, env_id, epoch, wrap FROM machine_wraps WHERE machine_id = $1
		ORDER BY env_id, epoch`, machineID)
	if err != nil {
		return nil, pgErr("list machine wraps", err)
	}
	defer rows.Close()
	var out []store.MachineWrap
	for rows.Next() {
		var w store.MachineWrap
		if err := rows.Scan(&w.MachineID, &w.AppID, &w.EnvID, &w.Epoch, &w.Wrap); err != nil {
			return nil, pgErr("list machine wraps", err)
		}
		out = append(out, w)
	}
	return out, pgErr("list machine wraps", rows.Err())
}

// TouchMachine implements [store.Store].
func (db *DB) TouchMachine(ctx context.Context, id []byte, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE machines SET last_seen_at = $1 WHERE id = $2`, utc(at), id)
	if err != nil {
		return pgErr("touch machine", err)
	}
	return mustAffect(tag, "touch machine")
}

// DeleteMachine implements [store.Store].
func (db *DB) DeleteMachine(ctx context.Context, accountID, id []byte) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM machines WHERE id = $1 AND account_id = $2`, id, accountID)
	if err != nil {
		return pgErr("delete machine", err)
	}
	return mustAffect(tag, "delete machine")
}

// ReplaceMachineWraps implements [store.Store].
func (db *DB) ReplaceMachineWraps(ctx context.Context, accountID, machineID []byte, wraps []store.MachineWrap) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE: two replacements of one machine's wraps run one after the other.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM machines WHERE id = $1 AND account_id = $2 FOR UPDATE`, machineID, accountID).Scan(&one); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM machine_wraps WHERE machine_id = $1`, machineID)
		for i := range wraps {
			w := wraps[i]
			w.MachineID = machineID
			queueWrap(b, accountID, &w)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return pgErr("replace machine wraps", err)
}
