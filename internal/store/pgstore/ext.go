// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opaquevault/opaquevault/internal/store"
)

// ---- the server's hot paths ----

// AppendAuditBatch implements [store.Store]: one transaction, one batch round trip, ids increasing.
func (db *DB) AppendAuditBatch(ctx context.Context, es []*store.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	return pgErr("append audit batch", db.writeTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, e := range es {
			b.Queue(`INSERT INTO audit (account_id, at, actor, action, target, remote_addr, result)
				VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
				nullBytes(e.AccountID), utc(e.Time), e.Actor, e.Action, e.Target, e.RemoteAddr, e.Result)
		}
		br := tx.SendBatch(ctx, b)
		for _, e := range es {
			if err := br.QueryRow().Scan(&e.ID); err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	}))
}

// MachineLive implements [store.Store].
func (db *DB) MachineLive(ctx context.Context, id, verifier []byte) (bool, error) {
	var live bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM machines WHERE id = $1 AND verifier = $2)`, id, verifier).Scan(&live)
	return live, pgErr("check machine", err)
}

// EnvHead implements [store.Store]: one statement, so one snapshot.
func (db *DB) EnvHead(ctx context.Context, envID, machineID, machineVerifier []byte) (*store.EnvHead, error) {
	var h store.EnvHead
	var epoch int64
	err := db.pool.QueryRow(ctx, `SELECT a.account_id, e.seq, e.epoch, e.manifest_sig, e.updated_at,
		(SELECT w.wrap FROM machine_wraps w WHERE w.machine_id = $1 AND w.env_id = e.id AND w.epoch = e.epoch),
		EXISTS (SELECT 1 FROM machines m WHERE m.id = $1 AND m.verifier = $2),
		s.raw, s.sig
		FROM envs e JOIN apps a ON a.id = e.app_id
		LEFT JOIN signed_objects s ON s.account_id = a.account_id AND s.kind = $4 AND s.key = encode(e.id, 'hex') || '/' || e.epoch::text
		WHERE e.id = $3`, machineID, machineVerifier, envID, store.EnvAccessKind).
		Scan(&h.AccountID, &h.Seq, &epoch, &h.ManifestSig, &h.UpdatedAt, &h.MachineWrap, &h.MachineLive, &h.AccessRaw, &h.AccessSig)
	if err != nil {
		return nil, pgErr("read env head", err)
	}
	h.Epoch, h.UpdatedAt = uint32(epoch), h.UpdatedAt.UTC()
	return &h, nil
}

// Usage implements [store.Store].
func (db *DB) Usage(ctx context.Context, accountID []byte) (*store.Usage, error) {
	var u store.Usage
	err := db.pool.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM apps WHERE account_id = $1),
		(SELECT COUNT(*) FROM envs e JOIN apps a ON a.id = e.app_id WHERE a.account_id = $1),
		(SELECT COUNT(*) FROM records r JOIN envs e ON e.id = r.env_id JOIN apps a ON a.id = e.app_id WHERE a.account_id = $1),
		(SELECT COALESCE(SUM(length(r.record)), 0) FROM records r JOIN envs e ON e.id = r.env_id JOIN apps a ON a.id = e.app_id WHERE a.account_id = $1),
		(SELECT COUNT(*) FROM machines WHERE account_id = $1),
		(SELECT COUNT(*) FROM devices WHERE account_id = $1 AND revoked_at IS NULL)`, accountID).
		Scan(&u.Apps, &u.Envs, &u.Secrets, &u.Bytes, &u.Machines, &u.Devices)
	if err != nil {
		return nil, pgErr("count usage", err)
	}
	return &u, nil
}

// ---- invites ----

// CreateInvite implements [store.Store].
func (db *DB) CreateInvite(ctx context.Context, inv *store.Invite) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO invites (id, verifier, note, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		inv.ID, inv.Verifier, inv.Note, utc(inv.CreatedAt), nullTime(inv.ExpiresAt))
	return pgErr("create invite", err)
}

// Invites implements [store.Store].
func (db *DB) Invites(ctx context.Context) ([]store.Invite, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, verifier, note, created_at, expires_at, used_at, used_by, revoked_at
		FROM invites ORDER BY created_at, id`)
	if err != nil {
		return nil, pgErr("list invites", err)
	}
	defer rows.Close()
	var out []store.Invite
	for rows.Next() {
		var inv store.Invite
		var expires, used, revoked *time.Time
		if err := rows.Scan(&inv.ID, &inv.Verifier, &inv.Note, &inv.CreatedAt, &expires, &used, &inv.UsedBy, &revoked); err != nil {
			return nil, pgErr("list invites", err)
		}
		inv.CreatedAt, inv.ExpiresAt, inv.UsedAt, inv.RevokedAt = inv.CreatedAt.UTC(), fromNull(expires), fromNull(used), fromNull(revoked)
		out = append(out, inv)
	}
	return out, pgErr("list invites", rows.Err())
}

// RevokeInvite implements [store.Store].
func (db *DB) RevokeInvite(ctx context.Context, id []byte, at time.Time) error {
	const op = "revoke invite"
	tag, err := db.pool.Exec(ctx, `UPDATE invites SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND used_at IS NULL`, utc(at), id)
	if err != nil {
		return pgErr(op, err)
	}
	return mustAffect(tag, op)
}

// errInviteSpent ends CreateAccountInvited's transaction when no usable invite matched.
var errInviteSpent = errors.New("invite unknown, used, revoked or expired")

// CreateAccountInvited implements [store.Store]: the invite is spent and the account created in one
// transaction; the UPDATE's row lock makes racing registrations with one invite serialize, and only
// the first finds it unused.
func (db *DB) CreateAccountInvited(ctx context.Context, a *store.Account, first *store.Device, inviteVerifier []byte) error {
	const op = "create account"
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			a.ID, store.NormalizeEmail(a.Email), a.KDF.T, a.KDF.M, int16(a.KDF.P), a.KDF.Salt, a.WrappedAK, a.AKVersion, a.KeyCheck,
			a.LoginVerifier, a.WrappedSignSeed, a.SignPub, utc(a.CreatedAt), utc(a.CreatedAt)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE invites SET used_at = $1, used_by = $2 WHERE verifier = $3 AND used_at IS NULL
			AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`, utc(a.CreatedAt), a.ID, inviteVerifier)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errInviteSpent
		}
		if first != nil {
			return insertDevice(ctx, tx, first, a.ID)
		}
		return nil
	})
	if errors.Is(err, errInviteSpent) {
		return fmt.Errorf("%s: %w: %w", op, errInviteSpent, store.ErrNotFound)
	}
	return pgErr(op, err)
}

// ---- signed objects ----

// errNotNewer ends PutSigned's transaction when the stored version is not below the new one.
var errNotNewer = errors.New("version is not above the stored one")

// PutSigned implements [store.Store]: the stored row is locked (FOR UPDATE) while the versions are
// compared, so that of two racing writers only a higher version replaces.
func (db *DB) PutSigned(ctx context.Context, o *store.SignedObject) error {
	const op = "put signed object"
	if o.Version > math.MaxInt64 {
		return fmt.Errorf("%s: version %d out of range", op, o.Version)
	}
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		var cur int64
		switch err := tx.QueryRow(ctx, `SELECT version FROM signed_objects WHERE account_id = $1 AND kind = $2 AND key = $3 FOR UPDATE`,
			o.AccountID, o.Kind, o.Key).Scan(&cur); {
		case errors.Is(err, pgx.ErrNoRows):
			_, err := tx.Exec(ctx, `INSERT INTO signed_objects (account_id, kind, key, version, raw, sig, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				o.AccountID, o.Kind, o.Key, int64(o.Version), o.Raw, o.Sig, utc(o.UpdatedAt))
			return err
		case err != nil:
			return err
		case uint64(cur) >= o.Version:
			return fmt.Errorf("%w: %d, stored %d", errNotNewer, o.Version, cur)
		}
		_, err := tx.Exec(ctx, `UPDATE signed_objects SET version = $1, raw = $2, sig = $3, updated_at = $4 WHERE account_id = $5 AND kind = $6 AND key = $7`,
			int64(o.Version), o.Raw, o.Sig, utc(o.UpdatedAt), o.AccountID, o.Kind, o.Key)
		return err
	})
	if errors.Is(err, errNotNewer) {
		return fmt.Errorf("%s: %w: %w", op, err, store.ErrConflict)
	}
	return pgErr(op, err)
}

// Signed implements [store.Store].
func (db *DB) Signed(ctx context.Context, accountID []byte, kind, key string) (*store.SignedObject, error) {
	o := &store.SignedObject{AccountID: append([]byte(nil), accountID...), Kind: kind, Key: key}
	var v int64
	err := db.pool.QueryRow(ctx, `SELECT version, raw, sig, updated_at FROM signed_objects WHERE account_id = $1 AND kind = $2 AND key = $3`,
		accountID, kind, key).Scan(&v, &o.Raw, &o.Sig, &o.UpdatedAt)
	if err != nil {
		return nil, pgErr("read signed object", err)
	}
	o.Version, o.UpdatedAt = uint64(v), o.UpdatedAt.UTC()
	return o, nil
}

// PoolStats reports the connection pool, for the server's metrics.
func (db *DB) PoolStats() map[string]store.PoolStats {
	s := db.pool.Stat()
	return map[string]store.PoolStats{"pool": {
		Max: int(s.MaxConns()), Open: int(s.TotalConns()), InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()),
		Waits: s.EmptyAcquireCount(), WaitTime: s.AcquireDuration(),
	}}
}
