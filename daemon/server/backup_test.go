// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
)

// TestBackupRestoreCommands runs `ov-server backup` and `ov-server restore` as a user would: a
// backup of a database, a change, a restore that brings the backed-up state back; and the usage
// errors.
func TestBackupRestoreCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ov-server.db")
	db, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(email string) {
		id := make([]byte, 16)
		copy(id, email)
		a := &store.Account{ID: id, Email: email, KDF: store.KDF{T: 3, M: 262144, P: 4, Salt: make([]byte, 16)}, WrappedAK: make([]byte, 74),
			KeyCheck: make([]byte, 32), LoginVerifier: make([]byte, 32), WrappedSignSeed: make([]byte, 74), SignPub: make([]byte, 32), CreatedAt: time.Now()}
		if err := db.CreateAccount(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
	}
	mk("before@example.com")

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(ctx, args, &out, &errb)
		return code, out.String(), errb.String()
	}
	file := filepath.Join(dir, "backup.db")
	if code, out, errs := run("backup", "--db", path, file); code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errs)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v", err)
	}
	if code, _, errs := run("backup", "--db", path, file); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("backup over an existing file: exit %d: %s", code, errs)
	}
	mk("after@example.com")
	// The database is open here, as under a running server: restore refuses.
	if code, _, errs := run("restore", "--db", path, file); code != 1 || !strings.Contains(errs, "stop ov-server first") {
		t.Fatalf("restore while in use: exit %d: %s", code, errs)
	}
	db.Close()
	if code, out, errs := run("restore", file, "--db", path); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errs)
	}
	db, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AccountByEmail(ctx, "before@example.com"); err != nil {
		t.Fatalf("restored database lacks the backed-up account: %v", err)
	}
	if _, err := db.AccountByEmail(ctx, "after@example.com"); err == nil {
		t.Fatal("restored database still has the account made after the backup")
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backup"}, 2, "wants one FILE"},
		{[]string{"restore", "a", "b"}, 2, "wants one FILE"},
		{[]string{"backup", "--db", "postgres://ov@db.example/ov", file + ".2"}, 1, "pg_dump"},
		{[]string{"restore", "--db", "postgres://ov@db.example/ov", file}, 1, "pg_restore"},
		{[]string{"backup", "--help"}, 0, "Usage: ov-server backup FILE"},
	} {
		code, _, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("ov-server %v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
}
