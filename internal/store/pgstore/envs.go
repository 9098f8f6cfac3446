// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opaquevault/opaquevault/internal/store"
)

// ---- apps ----

// CreateApp implements [store.Store].
func (db *DB) CreateApp(ctx context.Context, a *store.App) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO apps (id, account_id, name, created_at) VALUES ($1, $2, $3, $4)`,
		a.ID, a.AccountID, a.Name, utc(a.CreatedAt))
	return pgErr("create app", err)
}

// Apps implements [store.Store].
func (db *DB) Apps(ctx context.Context, accountID []byte) ([]store.App, error) {
	var apps []store.App
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, account_id, name, created_at FROM apps WHERE account_id = $1 ORDER BY name`, accountID)
		if err != nil {
			return err
		}
		idx := map[string]int{}
		for rows.Next() {
			var a store.App
			if err := rows.Scan(&a.ID, &a.AccountID, &a.Name, &a.CreatedAt); err != nil {
				rows.Close()
				return err
			}
			a.CreatedAt = a.CreatedAt.UTC()
			idx[string(a.ID)] = len(apps)
			apps = append(apps, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+envCols+envFrom+` WHERE a.account_id = $1 ORDER BY e.name`, accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEnv(rows)
			if err != nil {
				return err
			}
			if i, ok := idx[string(e.AppID)]; ok {
				apps[i].Envs = append(apps[i].Envs, *e)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, pgErr("list apps", err)
	}
	return apps, nil
}

// ---- environments ----

const envCols = `e.id, e.app_id, a.account_id, a.name, e.name, e.epoch, k.wrapped_ek, e.seq, e.manifest, e.manifest_sig,
	e.record_count, e.created_at, e.updated_at`

const envFrom = ` FROM envs e JOIN apps a ON a.id = e.app_id LEFT JOIN env_keys k ON k.env_id = e.id AND k.epoch = e.epoch`

func scanEnv(row pgx.Row) (*store.Env, error) {
	var e store.Env
	if err := row.Scan(&e.ID, &e.AppID, &e.AccountID, &e.AppName, &e.Name, &e.Epoch, &e.WrappedEK, &e.Seq, &e.Manifest,
		&e.ManifestSig, &e.Count, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return &e, nil
}

// CreateEnv implements [store.Store].
func (db *DB) CreateEnv(ctx context.Context, e *store.Env) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		// KEY SHARE: the app cannot be deleted under us (the foreign key would take it anyway).
		var acct []byte
		if err := tx.QueryRow(ctx, `SELECT account_id FROM apps WHERE id = $1 FOR KEY SHARE`, e.AppID).Scan(&acct); err != nil {
			return err
		}
		if !bytes.Equal(acct, e.AccountID) {
			return fmt.Errorf("app: %w", store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO envs (id, app_id, name, epoch, seq, record_count, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 0, 0, $5, $5)`, e.ID, e.AppID, e.Name, e.Epoch, utc(e.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO env_keys (env_id, epoch, wrapped_ek, created_at) VALUES ($1, $2, $3, $4)`,
			e.ID, e.Epoch, e.WrappedEK, utc(e.CreatedAt))
		return err
	})
	return pgErr("create env", err)
}

// ReadEnv implements [store.Store]. The env, its records and the machine's wrap are read in one
// REPEATABLE READ snapshot, sent to the server as one pipeline: one round trip.
func (db *DB) ReadEnv(ctx context.Context, envID []byte, opt store.ReadOptions) (*store.EnvView, error) {
	var v store.EnvView
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(`SELECT `+envCols+envFrom+` WHERE e.id = $1`, envID).QueryRow(func(row pgx.Row) error {
		e, err := scanEnv(row)
		if err != nil {
			return err
		}
		v.Env = *e
		return nil
	})
	if opt.Records != store.RecordsNone {
		q := `SELECT blind, version, hash, octet_length(record) FROM records WHERE env_id = $1 ORDER BY blind`
		if opt.Records == store.RecordsFull {
			q = `SELECT blind, version, hash, octet_length(record), record FROM records WHERE env_id = $1 ORDER BY blind`
		}
		b.Queue(q, envID).Query(func(rows pgx.Rows) error {
			v.Records = make([]store.Record, 0, v.Env.Count)
			for rows.Next() {
				var r store.Record
				dst := []any{&r.Blind, &r.Version, &r.Hash, &r.Size}
				if opt.Records == store.RecordsFull {
					dst = append(dst, &r.Data)
				}
				if err := rows.Scan(dst...); err != nil {
					return err
				}
				v.Records = append(v.Records, r)
			}
			return rows.Err()
		})
	}
	if opt.MachineID != nil {
		b.Queue(`SELECT w.wrap FROM machine_wraps w JOIN envs e ON e.id = w.env_id AND e.epoch = w.epoch
			WHERE w.machine_id = $1 AND w.env_id = $2`, opt.MachineID, envID).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&v.MachineWrap)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
	}
	b.Queue(`COMMIT`)
	// A failure leaves the connection inside the transaction; the pool then discards it.
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, pgErr("read env", err)
	}
	return &v, nil
}

// CommitEnv implements [store.Store].
func (db *DB) CommitEnv(ctx context.Context, c *store.Commit) error {
	const op = "commit env"
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		// The compare-and-swap comes first and locks the env's row: a concurrent writer, on this
		// instance or another, waits here, then re-checks seq against the committed row and
		// finds it moved (READ COMMITTED re-evaluates the WHERE clause on the new row version).
		var epoch *int64
		if c.Rotate != nil {
			e := int64(c.Rotate.Epoch)
			epoch = &e
		}
		var acct []byte
		err := tx.QueryRow(ctx, `UPDATE envs e SET seq = $1, manifest = $2, manifest_sig = $3, epoch = COALESCE($4, e.epoch), updated_at = $5
			FROM apps a WHERE a.id = e.app_id AND e.id = $6 AND e.seq = $7 RETURNING a.account_id`,
			c.Seq, c.Manifest, c.ManifestSig, epoch, utc(c.At), c.EnvID, c.ExpectedSeq).Scan(&acct)
		if errors.Is(err, pgx.ErrNoRows) {
			var seq uint64
			if err := tx.QueryRow(ctx, `SELECT seq FROM envs WHERE id = $1`, c.EnvID).Scan(&seq); err != nil {
				return err
			}
			return fmt.Errorf("seq is %d, not %d: %w", seq, c.ExpectedSeq, store.ErrConflict)
		}
		if err != nil {
			return err
		}

		// Everything else goes to the server in one round trip.
		b := &pgx.Batch{}
		if c.Rotate != nil {
			b.Queue(`DELETE FROM records WHERE env_id = $1`, c.EnvID)
			b.Queue(`INSERT INTO env_keys (env_id, epoch, wrapped_ek, created_at) VALUES ($1, $2, $3, $4)`,
				c.EnvID, c.Rotate.Epoch, c.Rotate.WrappedEK, utc(c.At))
			b.Queue(`DELETE FROM machine_wraps WHERE env_id = $1`, c.EnvID)
		} else if len(c.Delete) > 0 {
			b.Queue(`DELETE FROM records WHERE env_id = $1 AND blind = ANY($2)`, c.EnvID, c.Delete)
		}
		for _, r := range c.Put {
			h := sha256.Sum256(r.Data)
			b.Queue(`INSERT INTO records (env_id, blind, version, hash, record) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (env_id, blind) DO UPDATE SET version = excluded.version, hash = excluded.hash, record = excluded.record`,
				c.EnvID, r.Blind, r.Version, h[:], r.Data)
		}
		for _, id := range c.RevokeMachines {
			b.Queue(`DELETE FROM machines WHERE id = $1 AND account_id = $2`, id, acct).Exec(func(tag pgconn.CommandTag) error {
				return mustAffect(tag, "revoke machine")
			})
		}
		if c.Rotate != nil {
			for i := range c.Rotate.MachineWraps {
				w := c.Rotate.MachineWraps[i]
				if !bytes.Equal(w.EnvID, c.EnvID) {
					return fmt.Errorf("machine wrap for another env: %w", store.ErrNotFound)
				}
				queueWrap(b, acct, &w)
			}
		}
		b.Queue(`UPDATE envs SET record_count = (SELECT COUNT(*) FROM records WHERE env_id = $1) WHERE id = $1`, c.EnvID)
		queueHistory(b, c)
		err = tx.SendBatch(ctx, b).Close()
		if c.Rotate != nil && isUnique(err, "env_keys_pkey") {
			return fmt.Errorf("epoch %d already used: %w", c.Rotate.Epoch, store.ErrConflict)
		}
		return err
	})
	return pgErr(op, err)
}

// insertWrapSQL stores a machine wrap only if the machine and the env (of the wrap's app) both
// belong to the account.
const insertWrapSQL = `INSERT INTO machine_wraps (machine_id, app_id, env_id, epoch, wrap)
	SELECT $1, $2, $3, $4, $5
	WHERE EXISTS (SELECT 1 FROM machines WHERE id = $1 AND account_id = $6)
	  AND EXISTS (SELECT 1 FROM envs e JOIN apps a ON a.id = e.app_id WHERE e.id = $3 AND a.id = $2 AND a.account_id = $6)`

// queueWrap queues the insertion of w into b; the batch fails with ErrNotFound if w does not
// belong to account.
func queueWrap(b *pgx.Batch, account []byte, w *store.MachineWrap) {
	b.Queue(insertWrapSQL, w.MachineID, w.AppID, w.EnvID, w.Epoch, w.Wrap, account).Exec(func(tag pgconn.CommandTag) error {
		return mustAffect(tag, "store machine wrap")
	})
}
