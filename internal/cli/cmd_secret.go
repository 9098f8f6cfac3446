// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/dotenv"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/remote"
)

// parseDotenvFile parses path (or stdin for "-") and prints its warnings.
func (a *App) parseDotenvFile(path string, format dotenv.Format, expand bool) (*dotenv.Result, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = a.io.In, "<stdin>"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, withCode(ExitNotFound, fmt.Errorf("open %s: %w", path, unwrapPathErr(err)))
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o004 != 0 {
			a.warnf("%s is readable by every user on this machine (mode %04o)", path, fi.Mode().Perm())
		}
		r = f
	}
	var lookup func(string) (string, bool)
	if expand {
		lookup = os.LookupEnv
	}
	res, err := dotenv.Parse(r, dotenv.Options{Format: format, Expand: expand, Filename: name, Env: lookup})
	if err != nil {
		var list dotenv.ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			return nil, err
		}
		// Everything that is wrong, warnings of the refused file included, in line order, so that
		// the file can be fixed in one go.
		type problem struct {
			line, col int
			text      string
		}
		var all []problem
		if res != nil {
			for _, w := range res.Warnings {
				all = append(all, problem{w.Line, w.Column, "ov: warning: " + w.String()})
			}
		}
		// One error or several, alone or with warnings: the same form, each problem on its line,
		// then the count.
		for _, e := range list {
			all = append(all, problem{e.Line, e.Column, "ov: error: " + e.Error()})
		}
		sort.SliceStable(all, func(i, j int) bool {
			return all[i].line < all[j].line || all[i].line == all[j].line && all[i].col < all[j].col
		})
		for _, p := range all {
			fmt.Fprintln(a.io.Err, p.text)
		}
		return nil, fmt.Errorf("%d error(s) in %s; nothing was imported", len(list), name)
	}
	return res, nil
}

type importOut struct {
	App       string        `json:"app"`
	Env       string        `json:"env"`
	DryRun    bool          `json:"dry_run"`
	Secrets   []importEntry `json:"secrets"`
	Warnings  []string      `json:"warnings"`
	Imported  int           `json:"imported"`
	Unchanged int           `json:"unchanged"`
	Total     int           `json:"total"`
	Seq       uint64        `json:"seq,omitempty"`
}

type importEntry struct {
	Name   string  `json:"name"`
	Value  *string `json:"value,omitempty"`
	Line   int     `json:"line"`
	Column int     `json:"column"`
	Length int     `json:"length"`
	Status string  `json:"status,omitempty"` // new, updated, unchanged
}

func (a *App) secretImport(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	dry := fs.Bool("dry-run", false, "parse and show what would be imported; needs no server and no login")
	show := fs.Bool("show-values", false, "with --dry-run: print the values too")
	format := dotenv.Dotenv
	fs.Var(&format, "format", "input syntax: dotenv, systemd (EnvironmentFile=), docker (--env-file) or json")
	expand := fs.Bool("expand", false, "expand ${VAR} and $VAR in values (off by default: secrets often contain $)")
	overwrite := fs.Bool("overwrite", false, "replace secrets that already exist with a different value")
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usageErr("secret import takes one FILE (- for stdin)", "usage: ov "+a.cmd.usage)
	}
	if *show && !*dry {
		return usageErr("--show-values goes with --dry-run")
	}
	if !*dry {
		if err := a.need(t); err != nil {
			return err
		}
	} else if err := checkScopeFlags(t.app, t.env); err != nil {
		return err
	}
	res, err := a.parseDotenvFile(args[0], format, *expand)
	if err != nil {
		return err
	}
	defer res.Wipe()
	a.log.WithFields(logrus.Fields{"file": args[0], "format": format.String(), "expand": *expand, "entries": len(res.Entries),
		"warnings": len(res.Warnings)}).Debug("parsed")
	out := importOut{App: t.app, Env: t.env, DryRun: *dry, Total: len(res.Entries), Warnings: []string{}, Secrets: []importEntry{}}
	for _, w := range res.Warnings {
		out.Warnings = append(out.Warnings, w.String())
		if !a.g.JSON {
			a.warnf("%s", w.String())
		}
	}
	for _, e := range res.Entries {
		if err := checkVarName(e.Name); err != nil {
			return fmt.Errorf("import %s: %s:%d: %w", args[0], args[0], e.Line, err)
		}
		if len(e.Value) > envelope.MaxValueLen {
			return fmt.Errorf("import %s: %s:%d: the value of %s is %d bytes; at most %d fit in one secret", args[0], args[0], e.Line, e.Name, len(e.Value), envelope.MaxValueLen)
		}
		ie := importEntry{Name: e.Name, Line: e.Line, Column: e.Column, Length: len(e.Value)}
		if *show {
			v := string(e.Value)
			ie.Value = &v
		}
		out.Secrets = append(out.Secrets, ie)
	}
	if *dry {
		return a.printDryRun(args[0], &out, *show)
	}
	if len(res.Entries) == 0 {
		return fmt.Errorf("import %s: no variables found; nothing was imported", args[0])
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	status := map[string]string{}
	plan := func(cur *remote.Env) (*remote.Change, error) {
		ch := &remote.Change{}
		clear(status)
		var differ []string
		for _, e := range res.Entries {
			old, ok := cur.Lookup(e.Name)
			switch {
			case !ok:
				status[e.Name] = "new"
			case bytes.Equal(old.Value, e.Value):
				status[e.Name] = "unchanged"
				continue
			case !*overwrite:
				differ = append(differ, e.Name)
				continue
			default:
				status[e.Name] = "updated"
			}
			ch.Set = append(ch.Set, remote.Secret{Name: e.Name, Value: e.Value})
		}
		if len(differ) > 0 {
			return nil, withHints(fmt.Errorf("import %s: %d secret(s) already exist in %s/%s with a different value: %s; nothing was imported",
				args[0], len(differ), t.app, t.env, strings.Join(differ, ", ")), "pass --overwrite to replace them")
		}
		return ch, nil
	}
	start := time.Now()
	wr, err := s.vault.Write(ctx, t.app, t.env, true, plan)
	if err != nil {
		return envError(err, t.app, t.env)
	}
	a.log.WithFields(logrus.Fields{"app": t.app, "env": t.env, "seq": wr.Seq, "attempts": wr.Attempts, "created": wr.Created,
		"took": time.Since(start).Round(time.Millisecond)}).Debug("committed")
	out.Seq = wr.Seq
	for i := range out.Secrets {
		out.Secrets[i].Status = status[out.Secrets[i].Name]
		if out.Secrets[i].Status == "unchanged" {
			out.Unchanged++
		} else {
			out.Imported++
		}
	}
	if a.g.JSON {
		return a.printJSON(out)
	}
	w := a.io.Out
	for _, e := range out.Secrets {
		switch e.Status {
		case "unchanged":
			fmt.Fprintf(w, "= %s (unchanged)\n", e.Name)
		case "updated":
			fmt.Fprintf(w, "✓ %s (updated)\n", e.Name)
		default:
			fmt.Fprintf(w, "✓ %s\n", e.Name)
		}
	}
	fmt.Fprintf(w, "Imported %d/%d secret(s) into %s/%s\n", out.Imported, out.Total, t.app, t.env)
	if out.Imported == 0 {
		fmt.Fprintf(w, "Nothing changed: every secret in %s already has this value in %s/%s.\n", args[0], t.app, t.env)
	}
	a.printNextSteps(w, t, len(res.Entries))
	return nil
}

func (a *App) printDryRun(file string, out *importOut, show bool) error {
	if a.g.JSON {
		if !show && len(out.Secrets) > 0 {
			a.hintf("values are left out; add --show-values to include them")
		}
		return a.printJSON(out)
	}
	w := a.io.Out
	width := 4
	for _, e := range out.Secrets {
		width = max(width, len(e.Name))
	}
	fmt.Fprintf(w, "%-*s  %5s  %s\n", width, "NAME", "LINE", "LENGTH")
	for _, e := range out.Secrets {
		fmt.Fprintf(w, "%-*s  %5d  %d", width, e.Name, e.Line, e.Length)
		if show && e.Value != nil {
			fmt.Fprintf(w, "  %q", *e.Value)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Dry run: %d secret(s) parsed from %s, %d warning(s); nothing was sent.\n", len(out.Secrets), file, len(out.Warnings))
	return nil
}

func (a *App) printNextSteps(w io.Writer, t target, n int) {
	fmt.Fprintf(w, "\nNext steps:\n  1. Verify: ov secret list --app %s --env %s   (expect %d)\n", t.app, t.env, n)
	if a.goos == "darwin" {
		fmt.Fprintf(w, `  2. Unlock the agent for this login session: ov agent start   (prompts for the master password)
  3. Run your program with its secrets: ov run --app %[1]s --env %[2]s -- ./your-program
`, t.app, t.env)
		return
	}
	fmt.Fprintf(w, `  2. Give this server unattended access (Linux, systemd):
       sudo install -d -o $USER -g $USER -m 700 /etc/ov
       ov auth derive-machine-key --app %[1]s --env %[2]s --out /etc/ov/%[1]s.key
       sudo ov agent install --machine-key /etc/ov/%[1]s.key --app %[1]s --env %[2]s --user $USER --enable
  3. Cut the unit over: ExecStart=/usr/bin/ov run --app %[1]s --env %[2]s --machine-key /etc/ov/%[1]s.key -- /path/to/your/server
  4. Reboot-test, and only then retire the file: mv .env .env.bak
  The whole procedure: /usr/share/doc/opaquevault/migrating-from-dotenv.md
`, t.app, t.env)
}

type listOut struct {
	App     string      `json:"app"`
	Env     string      `json:"env"`
	Seq     uint64      `json:"seq"`
	Count   int         `json:"count"`
	Updated time.Time   `json:"updated_at"`
	Secrets []listEntry `json:"secrets"`
}

type listEntry struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

// readEnv parses the flags, checks the arguments with check (before any password is asked for),
// unlocks and reads the env.
func (a *App) readEnv(ctx context.Context, fs *pflag.FlagSet, args []string, t *target, check ...func([]string) error) (*session, *remote.Env, []string, error) {
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := a.need(*t); err != nil {
		return nil, nil, nil, err
	}
	for _, c := range check {
		if err := c(args); err != nil {
			return nil, nil, nil, err
		}
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return nil, nil, nil, err
	}
	start := time.Now()
	env, err := s.vault.Read(ctx, t.app, t.env)
	if err != nil {
		s.close()
		return nil, nil, nil, envError(err, t.app, t.env)
	}
	a.log.WithFields(logrus.Fields{"app": t.app, "env": t.env, "seq": env.Seq, "epoch": env.Epoch, "secrets": len(env.Secrets),
		"took": time.Since(start).Round(time.Millisecond)}).Debug("read, verified and decrypted the env")
	return s, env, args, nil
}

func (a *App) secretList(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	s, env, args, err := a.readEnv(ctx, fs, args, &t)
	if err != nil {
		return err
	}
	defer s.close()
	defer env.Wipe()
	if err := a.noArgs(args); err != nil {
		return err
	}
	out := listOut{App: t.app, Env: t.env, Seq: env.Seq, Count: len(env.Secrets), Updated: env.UpdatedAt, Secrets: []listEntry{}}
	for _, sec := range env.Secrets {
		out.Secrets = append(out.Secrets, listEntry{Name: sec.Name, Version: sec.Version})
	}
	if a.g.JSON {
		return a.printJSON(out)
	}
	width := 4
	for _, e := range out.Secrets {
		width = max(width, len(e.Name))
	}
	for _, e := range out.Secrets {
		fmt.Fprintf(a.io.Out, "%-*s  v%d\n", width, e.Name, e.Version)
	}
	when := "never written"
	if !env.UpdatedAt.IsZero() {
		when = "updated " + env.UpdatedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	fmt.Fprintf(a.io.Err, "%d secret(s) in %s/%s (%s)\n", out.Count, t.app, t.env, when)
	return nil
}

func (a *App) secretGet(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	noNL := fs.Bool("no-newline", false, "do not print a newline after the value")
	s, env, args, err := a.readEnv(ctx, fs, args, &t, func(args []string) error {
		if len(args) != 1 {
			return usageErr("secret get takes one NAME", "usage: ov "+a.cmd.usage)
		}
		if err := checkVarName(args[0]); err != nil {
			return usageErr(err.Error()) // as `secret set` does
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer s.close()
	defer env.Wipe()
	sec, ok := env.Lookup(args[0])
	if !ok {
		return withCode(ExitNotFound, fmt.Errorf("get %q: no such secret in %s/%s", args[0], t.app, t.env), fmt.Sprintf("`ov secret list --app %s --env %s` shows the names", t.app, t.env))
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"name": sec.Name, "version": sec.Version, "value": string(sec.Value)})
	}
	if _, err := a.io.Out.Write(sec.Value); err != nil {
		return err
	}
	if !*noNL {
		fmt.Fprintln(a.io.Out)
	}
	return nil
}

func (a *App) secretSet(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	keepNL := fs.Bool("keep-newline", false, "keep a trailing newline read from stdin")
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := a.need(t); err != nil {
		return err
	}
	if len(args) != 1 {
		return usageErr("secret set takes one NAME; the value comes from stdin or a prompt, never from the command line", "usage: ov "+a.cmd.usage)
	}
	name := args[0]
	if err := checkVarName(name); err != nil {
		return usageErr(err.Error())
	}
	var value []byte
	if f, ok := a.io.In.(*os.File); ok && isTerminal(f) {
		value, err = a.readSecretInput("value of "+name, "", "", true)
	} else {
		value, err = io.ReadAll(io.LimitReader(a.io.In, envelope.MaxValueLen+2))
		if err == nil && !*keepNL {
			value = bytes.TrimSuffix(value, []byte("\n"))
			value = bytes.TrimSuffix(value, []byte("\r"))
		}
	}
	if err != nil {
		return err
	}
	defer clear(value)
	if len(value) > envelope.MaxValueLen {
		return fmt.Errorf("set %s: the value is larger than %d bytes", name, envelope.MaxValueLen)
	}
	if bytes.IndexByte(value, 0) >= 0 || !utf8.Valid(value) {
		return fmt.Errorf("set %s: the value holds a NUL byte or is not UTF-8; environment variables cannot carry it", name)
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	wr, err := s.vault.Write(ctx, t.app, t.env, true, func(cur *remote.Env) (*remote.Change, error) {
		if old, ok := cur.Lookup(name); ok && bytes.Equal(old.Value, value) {
			return nil, nil
		}
		return &remote.Change{Set: []remote.Secret{{Name: name, Value: value}}}, nil
	})
	if err != nil {
		return envError(err, t.app, t.env)
	}
	if a.g.JSON {
		v := uint64(0)
		if wr.Change != nil {
			v = wr.Change.Set[0].Version
		}
		return a.printJSON(map[string]any{"name": name, "version": v, "changed": wr.Change != nil, "seq": wr.Seq})
	}
	if wr.Change == nil {
		fmt.Fprintf(a.io.Out, "= %s already has this value in %s/%s\n", name, t.app, t.env)
		return nil
	}
	fmt.Fprintf(a.io.Out, "✓ %s (v%d) in %s/%s\n", name, wr.Change.Set[0].Version, t.app, t.env)
	return nil
}

func (a *App) secretDelete(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := a.need(t); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageErr("secret delete takes at least one NAME", "usage: ov "+a.cmd.usage)
	}
	for _, n := range args {
		if err := checkVarName(n); err != nil {
			return usageErr(err.Error())
		}
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	wr, err := s.vault.Write(ctx, t.app, t.env, false, func(cur *remote.Env) (*remote.Change, error) {
		var missing []string
		for _, n := range args {
			if _, ok := cur.Lookup(n); !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, withCode(ExitNotFound, fmt.Errorf("delete: no secret %s in %s/%s; nothing was deleted", strings.Join(missing, ", "), t.app, t.env))
		}
		return &remote.Change{Delete: dedupe(args)}, nil
	})
	if err != nil {
		return envError(err, t.app, t.env)
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"deleted": dedupe(args), "seq": wr.Seq})
	}
	for _, n := range dedupe(args) {
		fmt.Fprintf(a.io.Out, "✗ %s deleted from %s/%s\n", n, t.app, t.env)
	}
	return nil
}

func (a *App) secretExport(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	format := dotenv.Dotenv
	fs.Var(&format, "format", "output syntax: dotenv, docker, systemd or json")
	outFile := fs.String("out", "", "write to this new file (created 0600; never replaces a file) instead of stdout")
	s, env, args, err := a.readEnv(ctx, fs, args, &t)
	if err != nil {
		return err
	}
	defer s.close()
	defer env.Wipe()
	if err := a.noArgs(args); err != nil {
		return err
	}
	entries := make([]dotenv.Entry, 0, len(env.Secrets))
	for _, sec := range env.Secrets {
		entries = append(entries, dotenv.Entry{Name: sec.Name, Value: sec.Value})
	}
	var buf bytes.Buffer
	defer func() { clear(buf.Bytes()) }()
	if err := dotenv.Write(&buf, entries, format); err != nil {
		return fmt.Errorf("export %s/%s as %s: %w", t.app, t.env, format, err)
	}
	if *outFile != "" {
		if err := credentials.WriteKeyFile(*outFile, buf.Bytes(), credentials.WriteOptions{}); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(a.io.Err, "%d secret(s) of %s/%s written to %s (0600)\n", len(entries), t.app, t.env, *outFile)
		return nil
	}
	_, err = a.io.Out.Write(buf.Bytes())
	return err
}
