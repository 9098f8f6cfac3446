// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/internal/store/storeopen"
)

// backupMain runs `ov-server backup FILE` (a consistent copy of the SQLite database, taken while
// servers run) and `ov-server restore FILE` (the database replaced by a backup, with no server
// running). PostgreSQL databases use pg_dump and pg_restore instead.
func backupMain(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	var db string
	fs := pflag.NewFlagSet("ov-server "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&db, "db", "", "the SQLite database file, a `PATH` (default: $STATE_DIRECTORY/ov-server.db, else /var/lib/ov-server/ov-server.db)")
	fs.Usage = func() {
		what := "write a consistent copy of the database to FILE (a new file, 0600), while ov-server runs"
		if cmd == "restore" {
			what = "replace the database by the backup FILE; stop ov-server first"
		}
		fmt.Fprintf(stderr, "Usage: ov-server %s FILE [--db PATH]\n\n%s.\nPostgreSQL: use pg_dump and pg_restore.\n\nFlags:\n%s", cmd, what, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "ov-server: error: %s wants one FILE\nov-server: hint: ov-server %s /var/backups/ov-server.db\n", cmd, cmd)
		return exitUsage
	}
	if db == "" {
		db = defaultDBPath()
	}
	file := fs.Arg(0)
	var err error
	if cmd == "backup" {
		err = storeopen.Backup(ctx, db, file)
	} else {
		err = storeopen.Restore(ctx, db, file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
		return exitFailure
	}
	if cmd == "backup" {
		fmt.Fprintf(stdout, "ov-server: backed up %s to %s\n", db, file)
	} else {
		fmt.Fprintf(stdout, "ov-server: restored %s from %s\n", db, file)
	}
	return exitOK
}
