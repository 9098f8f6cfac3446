// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opaquevault/opaquevault/internal/store"
)

// ---- accounts ----

const accountCols = `id, email, kdf_t, kdf_m, kdf_p, kdf_salt, wrapped_ak, ak_version, key_check,
	login_verifier, wrapped_sign_seed, sign_pub, created_at, updated_at`

func scanAccount(row pgx.Row) (*store.Account, error) {
	var a store.Account
	var p int16
	if err := row.Scan(&a.ID, &a.Email, &a.KDF.T, &a.KDF.M, &p, &a.KDF.Salt, &a.WrappedAK, &a.AKVersion,
		&a.KeyCheck, &a.LoginVerifier, &a.WrappedSignSeed, &a.SignPub, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	a.KDF.P = uint8(p)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return &a, nil
}

// CreateAccount implements [store.Store].
func (db *DB) CreateAccount(ctx context.Context, a *store.Account, first *store.Device) error {
	const op = "create account"
	return pgErr(op, db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			a.ID, store.NormalizeEmail(a.Email), a.KDF.T, a.KDF.M, int16(a.KDF.P), a.KDF.Salt, a.WrappedAK, a.AKVersion, a.KeyCheck,
			a.LoginVerifier, a.WrappedSignSeed, a.SignPub, utc(a.CreatedAt), utc(a.CreatedAt)); err != nil {
			return err
		}
		if first != nil {
			return insertDevice(ctx, tx, first, a.ID)
		}
		return nil
	}))
}

// Account implements [store.Store].
func (db *DB) Account(ctx context.Context, id []byte) (*store.Account, error) {
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return nil, pgErr("read account", err)
	}
	return a, nil
}

// AccountByEmail implements [store.Store].
func (db *DB) AccountByEmail(ctx context.Context, email string) (*store.Account, error) {
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE email = $1`, store.NormalizeEmail(email)))
	if err != nil {
		return nil, pgErr("read account", err)
	}
	return a, nil
}

// ChangePassword implements [store.Store].
func (db *DB) ChangePassword(ctx context.Context, c *store.PasswordChange) error {
	const op = "change password"
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE: a second change (on any instance) waits here and then compares against the
		// verifier the first one wrote.
		var cur []byte
		if err := tx.QueryRow(ctx, `SELECT login_verifier FROM accounts WHERE id = $1 FOR UPDATE`, c.AccountID).Scan(&cur); err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(cur, c.OldLoginVerifier) != 1 {
			return fmt.Errorf("login verifier changed: %w", store.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET kdf_t = $1, kdf_m = $2, kdf_p = $3, kdf_salt = $4, wrapped_ak = $5,
			ak_version = $6, key_check = $7, login_verifier = $8, updated_at = $9 WHERE id = $10`,
			c.KDF.T, c.KDF.M, int16(c.KDF.P), c.KDF.Salt, c.WrappedAK, c.AKVersion, c.KeyCheck, c.LoginVerifier, utc(c.At), c.AccountID); err != nil {
			return err
		}
		if c.RevokeMachines {
			if _, err := tx.Exec(ctx, `DELETE FROM machines WHERE account_id = $1`, c.AccountID); err != nil {
				return err
			}
		}
		return nil
	})
	return pgErr(op, err)
}

// ---- devices ----

const deviceCols = `key_id, account_id, verifier, name, created_at, last_used_at, revoked_at`

func insertDevice(ctx context.Context, tx pgx.Tx, d *store.Device, accountID []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		d.KeyID, accountID, d.Verifier, d.Name, utc(d.CreatedAt), nullTime(d.LastUsedAt), nullTime(d.RevokedAt))
	return err
}

func scanDevice(row pgx.Row) (*store.Device, error) {
	var d store.Device
	var used, revoked *time.Time
	if err := row.Scan(&d.KeyID, &d.AccountID, &d.Verifier, &d.Name, &d.CreatedAt, &used, &revoked); err != nil {
		return nil, err
	}
	d.CreatedAt, d.LastUsedAt, d.RevokedAt = d.CreatedAt.UTC(), fromNull(used), fromNull(revoked)
	return &d, nil
}

// AddDevice implements [store.Store].
func (db *DB) AddDevice(ctx context.Context, d *store.Device) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		d.KeyID, d.AccountID, d.Verifier, d.Name, utc(d.CreatedAt), nullTime(d.LastUsedAt), nullTime(d.RevokedAt))
	return pgErr("add device", err)
}

// Device implements [store.Store].
func (db *DB) Device(ctx context.Context, keyID []byte) (*store.Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE key_id = $1`, keyID))
	if err != nil {
		return nil, pgErr("read device", err)
	}
	return d, nil
}

// Devices implements [store.Store].
func (db *DB) Devices(ctx context.Context, accountID []byte) ([]store.Device, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = $1 ORDER BY created_at, key_id`, accountID)
	if err != nil {
		return nil, pgErr("list devices", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, pgErr("list devices", err)
		}
		out = append(out, *d)
	}
	return out, pgErr("list devices", rows.Err())
}

// TouchDevice implements [store.Store].
func (db *DB) TouchDevice(ctx context.Context, keyID []byte, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE devices SET last_used_at = $1 WHERE key_id = $2`, utc(at), keyID)
	if err != nil {
		return pgErr("touch device", err)
	}
	return mustAffect(tag, "touch device")
}

// RevokeDevice implements [store.Store].
func (db *DB) RevokeDevice(ctx context.Context, accountID, keyID []byte, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE key_id = $2 AND account_id = $3`,
		utc(at), keyID, accountID)
	if err != nil {
		return pgErr("revoke device", err)
	}
	return mustAffect(tag, "revoke device")
}
