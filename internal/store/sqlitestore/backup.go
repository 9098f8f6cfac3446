// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrInUse means a restore found the database open in another process (a running ov-server).
var ErrInUse = errors.New("database is in use")

// Backup writes a consistent copy of the database at path to file while servers keep using it
// (VACUUM INTO reads one snapshot). file must not exist; it is written 0600 under a temporary name
// in its directory, checked, synced and only then given its name, so that a failed or interrupted
// backup never leaves a file that looks complete.
func Backup(ctx context.Context, path, file string) error {
	if strings.ContainsAny(path, "?#") {
		return fmt.Errorf("backup: database path %q must not contain '?' or '#'", path)
	}
	if err := checkExisting(path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("backup: %s already exists; give a new name", file)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".ov-backup-*") // 0600
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)

	src, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmpName); err != nil {
		return fmt.Errorf("backup: copy %s: %w", path, err)
	}
	if err := checkCopy(ctx, tmpName); err != nil {
		return fmt.Errorf("backup: the copy: %w", err)
	}
	if err := syncFile(tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Link, not rename: a file that appeared meanwhile is never replaced.
	if err := os.Link(tmpName, file); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncDir(filepath.Dir(file))
}

// Restore replaces the content of the database at path (created if missing) by the backup in
// file, in one SQLite transaction: a failure leaves the old content. It refuses, with
// [ErrInUse], while another process has the database open. The backup is checked first
// (integrity, and a schema this program knows); the caller should then open the database with
// [Open], which migrates an older schema.
func Restore(ctx context.Context, file, path string) error {
	if strings.ContainsAny(path, "?#") {
		return fmt.Errorf("restore: database path %q must not contain '?' or '#'", path)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("restore: %s is not a regular file", file)
	}
	if err := prepareFile(path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Work on a private copy: SQLite may write to a file it opens (a journal to roll back), and
	// the backup must stay as it is.
	staged, err := stageCopy(file, filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(staged)
	if err := checkCopy(ctx, staged); err != nil {
		return fmt.Errorf("restore: %s: %w", file, err)
	}

	// One connection in exclusive locking mode: it gets the exclusive lock only if no other
	// process has the database open, and keeps it until closed.
	dst, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)&_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", path, err)
	}
	defer dst.Close()
	dst.SetMaxOpenConns(1)
	conn, err := dst.Conn(ctx)
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		if isBusy(err) {
			return fmt.Errorf("restore: %s: %w: stop ov-server first", path, ErrInUse)
		}
		return fmt.Errorf("restore: lock %s: %w", path, err)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("restore: lock %s: %w", path, err)
	}
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(interface {
			NewRestore(string) (*sqlite.Backup, error)
		})
		if !ok {
			return errors.New("the SQLite driver has no backup API")
		}
		b, err := r.NewRestore(staged)
		if err != nil {
			return err
		}
		if _, err := b.Step(-1); err != nil {
			b.Finish()
			return err
		}
		return b.Finish()
	})
	if err != nil {
		if isBusy(err) {
			return fmt.Errorf("restore: %s: %w: stop ov-server first", path, ErrInUse)
		}
		return fmt.Errorf("restore: copy into %s: %w", path, err)
	}
	return nil
}

// checkExisting refuses a database path that does not name an existing regular file.
func checkExisting(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// checkCopy checks that the SQLite file at p is intact and holds a schema this program knows.
func checkCopy(ctx context.Context, p string) error {
	db, err := sql.Open("sqlite", p+"?_pragma=query_only(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("not a SQLite database: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check failed: %s", res)
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("not an ov-server database: %w", err)
	}
	if v < 1 {
		return errors.New("not an ov-server database: no schema")
	}
	if v > LatestSchema() {
		return fmt.Errorf("schema version %d, this program knows up to %d: %w", v, LatestSchema(), ErrSchemaTooNew)
	}
	return nil
}

// stageCopy copies file into a new 0600 file in dir and returns its name.
func stageCopy(file, dir string) (string, error) {
	in, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".ov-restore-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
