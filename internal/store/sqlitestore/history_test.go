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
	// Back to schema 3: without the change log (5), then without history (4).
	var undo []string
	rows, err := db.w.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'changes_%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		undo = append(undo, `DROP TRIGGER `+name)
	}
	rows.Close()
	if len(undo) != 24 {
		t.Fatalf("%d change triggers, want 24", len(undo))
	}
	undo = append(undo, `DROP TABLE changes`, `DROP TABLE change_counter`, `DELETE FROM schema_version WHERE version = 5`)
	for _, q := range append(undo, `DROP TABLE manifest_history`, `DROP TABLE record_history`, `DELETE FROM schema_version WHERE version = 4`) {
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
