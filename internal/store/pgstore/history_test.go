// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"testing"

	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

// undoChangeTriggers takes a database back from schema 4 to schema 3.
var undoChangeTriggers = []string{
	`DROP FUNCTION ov_changed_all() CASCADE`, `DROP FUNCTION ov_changed_envs() CASCADE`, `DROP FUNCTION ov_changed_env_keys() CASCADE`,
	`DROP FUNCTION ov_changed_records() CASCADE`, `DROP FUNCTION ov_changed_machines() CASCADE`, `DROP FUNCTION ov_changed_machine_wraps() CASCADE`,
	`DROP FUNCTION ov_changed_apps() CASCADE`, `DROP FUNCTION ov_changed_signed_objects() CASCADE`, `DROP FUNCTION ov_changed_accounts() CASCADE`,
	`DROP FUNCTION ov_notify(text, bytea)`, `DELETE FROM schema_version WHERE version = 4`,
}

// TestHistoryUpgrade opens a database from before the history tables (schema 2) with this program:
// migration 3 copies what each environment holds into its history.
func TestHistoryUpgrade(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db, err := Open(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	envID, manifest, cur := storetest.SeedForUpgrade(t, db)
	for _, q := range append(undoChangeTriggers, `DROP TABLE manifest_history`, `DROP TABLE record_history`, `DELETE FROM schema_version WHERE version >= 3`) {
		if _, err := db.pool.Exec(bg, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = Open(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.CheckUpgraded(t, db, envID, manifest, cur)
}
