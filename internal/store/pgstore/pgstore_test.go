// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"
	"testing"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

var bg = context.Background()

func openNew(t testing.TB) *DB {
	t.Helper()
	db, err := Open(bg, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	pgtest.AdminDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openNew(t) })
}

func TestConformanceReopen(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	storetest.RunReopen(t, func(t *testing.T) store.Store {
		db, err := Open(bg, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
