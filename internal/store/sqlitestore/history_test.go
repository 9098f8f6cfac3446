// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

// TestHistoryUpgrade opens a database from before the history tables (schema 3) with this program:
// migration 4 copies what each environment holds into its history.
func TestHistoryUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ov-server.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	envID, manifest, cur := storetest.SeedForUpgrade(t, db)
	for _, q := range []string{`DROP TABLE manifest_history`, `DROP TABLE record_history`, `DELETE FROM schema_version WHERE version = 4`} {
		if _, err := db.w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.CheckUpgraded(t, db, envID, manifest, cur)
}
