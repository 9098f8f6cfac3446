// SPDX-License-Identifier: Apache-2.0

package storeopen

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/store/pgstore"
	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
)

func TestChoosesTheBackend(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := db.(*sqlitestore.DB); !ok || db.Path() != path {
		t.Fatalf("a path opened %T at %s", db, db.Path())
	}
	db.Close()

	for s, want := range map[string]bool{"postgres://h/db": true, "postgresql://h/db": true, "/var/lib/x.db": false,
		"postgres.db": false, "./postgres://x": false, "POSTGRES://h/db": false} {
		if IsPostgres(s) != want {
			t.Errorf("IsPostgres(%q) = %v", s, !want)
		}
	}
	// A refused PostgreSQL URL is an error and a nil DB, not a typed nil.
	db, err = Open(ctx, "postgres://ov:hunter2@db.example/ov")
	if err == nil || db != nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("URL with a password: %v, %v", db, err)
	}
}

func TestOpensPostgres(t *testing.T) {
	db, err := Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok := db.(*pgstore.DB); !ok {
		t.Fatalf("a postgres:// URL opened %T", db)
	}
}
