// SPDX-License-Identifier: Apache-2.0

// Package storeopen opens the [store.Store] that ov-server's --db value names: a postgres:// (or
// postgresql://) URL opens PostgreSQL (package pgstore), anything else is the path of a SQLite file
// (package sqlitestore). It is the one place that knows the backends by name, so that
// daemon/server knows none; it lives apart from package store because the backends import store.
package storeopen

import (
	"context"
	"errors"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/pgstore"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
)

// DB is an open store.
type DB interface {
	store.Store
	// Path says where the data lives, for logs: the SQLite file, or the DSN without a password.
	Path() string
}

// IsPostgres reports whether dsn names a PostgreSQL database rather than a SQLite file.
func IsPostgres(dsn string) bool { return pgstore.IsDSN(dsn) }

// Open opens (creating and migrating if needed) the store named by dsn.
func Open(ctx context.Context, dsn string) (DB, error) {
	if IsPostgres(dsn) {
		db, err := pgstore.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	db, err := sqlitestore.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// Backup writes a consistent copy of the SQLite database dsn to file, while servers keep using
// it. PostgreSQL databases are backed up with pg_dump instead.
func Backup(ctx context.Context, dsn, file string) error {
	if IsPostgres(dsn) {
		return errors.New("backup: the database is PostgreSQL: use pg_dump (see docs/self-hosting.md)")
	}
	return sqlitestore.Backup(ctx, dsn, file)
}

// Restore replaces the SQLite database dsn by the backup in file; no server may be using it.
func Restore(ctx context.Context, dsn, file string) error {
	if IsPostgres(dsn) {
		return errors.New("restore: the database is PostgreSQL: use pg_restore or psql (see docs/self-hosting.md)")
	}
	if err := sqlitestore.Restore(ctx, file, dsn); err != nil {
		return err
	}
	// Bring an older backup's schema up to date now, so that a failure shows here.
	db, err := sqlitestore.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("restore: open the restored database: %w", err)
	}
	return db.Close()
}
