// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/storeopen"
)

// inviteMain is `ov-server invite create|list|revoke`: the operator's commands, run on the host
// against the database file (the server may be running). The code is printed once, on stdout,
// and only its verifier is stored; it is never logged.
func inviteMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ov-server invite", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "the database, a `PATH` or postgres:// URL (default: as ov-server)")
	expires := fs.Duration("expires", 7*24*time.Hour, "create: the code expires after this `DURATION` (0: never)")
	note := fs.String("note", "", "create: a note, `TEXT` shown by invite list (who the code is for); not secret")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ov-server invite create [--expires 168h] [--note TEXT] [--db PATH]\n"+
			"       ov-server invite list [--db PATH]\n       ov-server invite revoke ID [--db PATH]\n\n"+
			"An invite code lets one person register when ov-server runs with --registration invite.\n"+
			"`create` prints the code once on stdout; the server keeps only its SHA-256.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	if *db == "" {
		*db = defaultDBPath()
	}
	if err := checkText("note", *note, maxLabelLen, true); err != nil {
		fmt.Fprintf(stderr, "ov-server: error: --note: %v\n", err)
		return exitUsage
	}
	verb, rest := fs.Arg(0), fs.Args()[1:]
	want := map[string]int{"create": 0, "list": 0, "revoke": 1}
	n, ok := want[verb]
	if !ok || len(rest) != n {
		fmt.Fprintf(stderr, "ov-server: error: want `invite create`, `invite list` or `invite revoke ID`\n")
		return exitUsage
	}
	st, err := storeopen.Open(ctx, *db)
	if err != nil {
		fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	switch verb {
	case "create":
		err = createInvite(ctx, st, *expires, *note, stdout, stderr)
	case "list":
		err = listInvites(ctx, st, stdout)
	case "revoke":
		var id []byte
		if id, err = hex.DecodeString(rest[0]); err != nil || len(id) != 8 {
			fmt.Fprintf(stderr, "ov-server: error: invite id %q: want 16 hex digits, as `invite list` shows\n", rest[0])
			return exitUsage
		}
		err = st.RevokeInvite(ctx, id, time.Now())
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("revoke invite %s: no such unused invite", rest[0])
		} else if err == nil {
			fmt.Fprintf(stderr, "ov-server: invite %s revoked\n", rest[0])
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func createInvite(ctx context.Context, st store.Store, expires time.Duration, note string, stdout, stderr io.Writer) error {
	if expires < 0 {
		return errors.New("--expires must be ≥ 0")
	}
	code, verifier, err := NewInviteCode()
	if err != nil {
		return err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("make invite id: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	inv := &store.Invite{ID: id, Verifier: verifier, Note: note, CreatedAt: now}
	if expires > 0 {
		inv.ExpiresAt = now.Add(expires)
	}
	if err := st.CreateInvite(ctx, inv); err != nil {
		return fmt.Errorf("store invite: %w", err)
	}
	fmt.Fprintln(stdout, code)
	when := "never expires"
	if expires > 0 {
		when = "expires " + inv.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stderr, "ov-server: invite %x created (%s); it is shown only this once.\n"+
		"ov-server: the new user saves it in a file and runs: ov auth register --server URL --email E --invite-file FILE\n", id, when)
	return nil
}

func listInvites(ctx context.Context, st store.Store, stdout io.Writer) error {
	list, err := st.Invites(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	fmt.Fprintf(stdout, "%-16s  %-20s  %-20s  %-8s  %s\n", "ID", "CREATED", "EXPIRES", "STATE", "NOTE")
	for _, inv := range list {
		state := "unused"
		switch {
		case !inv.UsedAt.IsZero():
			state = "used"
		case !inv.RevokedAt.IsZero():
			state = "revoked"
		case !inv.ExpiresAt.IsZero() && !now.Before(inv.ExpiresAt):
			state = "expired"
		}
		exp := "never"
		if !inv.ExpiresAt.IsZero() {
			exp = inv.ExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%-16x  %-20s  %-20s  %-8s  %s\n", inv.ID, inv.CreatedAt.UTC().Format(time.RFC3339), exp, state, strings.TrimSpace(inv.Note))
	}
	return nil
}
