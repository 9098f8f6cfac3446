// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/doctor"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/sdunit"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// systemdReload reloads the service manager (tests replace it).
var systemdReload = func(ctx context.Context) error {
	m, err := sd.SystemManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Reload(ctx)
}

// unitArg reads the UNIT argument ("myapp" means myapp.service).
func (a *App) unitArg(args []string) (string, error) {
	if len(args) != 1 {
		return "", usageErr("want one UNIT", "usage: ov "+a.cmd.usage)
	}
	u := args[0]
	if !strings.Contains(u, ".") {
		u += ".service"
	}
	if err := sdunit.ValidName(u); err != nil {
		return "", usageErr(err.Error())
	}
	return u, nil
}

// rootArg checks --root: an existing directory; "" is the running system.
func rootArg(root string) (string, error) {
	if root == "" {
		return "/", nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", usageErr("--root: " + err.Error())
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", usageErr(fmt.Sprintf("--root %s is not a directory", root))
	}
	return abs, nil
}

func underRoot(root, p string) string {
	if root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

type cutoverOut struct {
	Unit      string       `json:"unit"`
	App       string       `json:"app"`
	Env       string       `json:"env"`
	Variables []sdunit.Var `json:"variables"`
	DropIn    string       `json:"drop_in_path"`
	Content   string       `json:"drop_in,omitempty"`
	Written   bool         `json:"written"`
	Reloaded  bool         `json:"reloaded"`
}

// systemdCutover compares what the unit gets today with the vault, then writes the drop-in.
func (a *App) systemdCutover(ctx context.Context, args []string) error {
	fl := a.flags()
	var t target
	t.add(fl)
	keyFile := fl.String("machine-key", "", "the machine key file ov run reads in the unit (owned by the unit's User=, 0600); also used to compare the values (with --credentials: the system agent's key, owned by its User=, used only to compare)")
	creds := fl.Bool("credentials", false, "instead of ov run: LoadCredential=NAME:/run/ov/credentials.sock lines (the system agent's credential provider) and the policy /etc/ov/credentials.d/UNIT.conf; ExecStart= runs through ov env-from-credentials")
	filesOnly := fl.Bool("files-only", false, "with --credentials: leave ExecStart= alone (the program reads $CREDENTIALS_DIRECTORY itself, and no variable holds a secret)")
	dry := fl.Bool("dry-run", false, "print the comparison and the drop-in; write nothing")
	rootFlag := fl.String("root", "", "work on the image mounted at ROOT (its /etc/systemd/system, /lib/systemd/system); no reload")
	var u unlockFlags
	u.add(fl)
	rest, err := a.parse(fl, args)
	if err != nil {
		return err
	}
	unit, err := a.unitArg(rest)
	if err != nil {
		return err
	}
	if err := a.need(t); err != nil {
		return err
	}
	root, err := rootArg(*rootFlag)
	if err != nil {
		return err
	}
	switch {
	case !*creds && *keyFile == "":
		return usageErr("--machine-key PATH is required (or --credentials)", "usage: ov "+a.cmd.usage)
	case *filesOnly && !*creds:
		return usageErr("--files-only goes with --credentials")
	case *keyFile != "" && !filepath.IsAbs(*keyFile):
		return usageErr("--machine-key must be an absolute path (systemd runs ov run from /)")
	}
	dropPath := sdunit.DropInPath(unit)
	if _, err := os.Lstat(underRoot(root, dropPath)); err == nil {
		return withCode(ExitFailure, fmt.Errorf("cut over %s: %s exists: the unit is already cut over", unit, underRoot(root, dropPath)),
			"to redo it: ov systemd rollback "+unit+", then ov systemd cutover again")
	}
	un, err := sdunit.Load(root, unit, sdunit.DropInName)
	if err != nil {
		if errors.Is(err, sdunit.ErrNotFound) {
			return withCode(ExitNotFound, err)
		}
		return err
	}
	svc, err := un.Service()
	if err != nil {
		return err
	}
	sp := sdunit.SpecifiersFor(unit, hostnameIn(root))
	files, err := sdunit.ReadEnvFiles(root, svc, sp)
	if err != nil {
		return withCode(ExitFailure, fmt.Errorf("cut over %s: %w", unit, err))
	}
	defer sdunit.Wipe(files)
	srcs := sdunit.Sources(svc, sp, files)

	var env *remote.Env
	switch {
	case *creds && *keyFile != "":
		env, err = a.readWithAgentKey(ctx, t, root, *keyFile)
	case *creds:
		env, err = a.readForRun(ctx, t, machineFlags{}, u, nil)
	default:
		env, err = a.readWithKeyOf(ctx, t, root, *keyFile, svc)
	}
	if err != nil {
		return err
	}
	vars := sdunit.Compare(srcs, func(n string) ([]byte, bool) {
		s, ok := env.Lookup(n)
		return s.Value, ok
	})
	env.Wipe()

	out := cutoverOut{Unit: unit, App: t.app, Env: t.env, Variables: vars, DropIn: underRoot(root, dropPath)}
	if !a.g.JSON {
		fmt.Fprintf(a.io.Out, "%s gets %d variable(s); compared with %s/%s:\n", unit, len(vars), t.app, t.env)
		for _, v := range vars {
			fmt.Fprintf(a.io.Out, "  %-8s %s (%s)\n", v.Status, v.Name, v.From)
		}
	}
	if r := sdunit.Refused(vars); len(r) > 0 {
		if a.g.JSON {
			_ = a.printJSON(out)
		}
		return withCode(ExitFailure, sdunit.RefusalError(unit, t.app, t.env, r),
			fmt.Sprintf("import what is missing or differs (ov secret import FILE --app %s --env %s, or ov secret set NAME), then run the cut-over again", t.app, t.env))
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cut over %s: find ov: %w", unit, err)
	}
	plan := &sdunit.Plan{Unit: unit, App: t.app, Env: t.env, OvPath: self, MachineKey: *keyFile, Credentials: *creds, FilesOnly: *filesOnly, Vars: vars}
	if *creds {
		plan.MachineKey = "" // the agent holds the key; the unit names none
	}
	text, err := plan.Render(svc)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if err := plan.Check(un, text); err != nil {
		return withCode(ExitFailure, err)
	}
	out.Content = text
	if *dry {
		if a.g.JSON {
			return a.printJSON(out)
		}
		fmt.Fprintf(a.io.Out, "\nWould write %s:\n%s", out.DropIn, text)
		if *creds {
			fmt.Fprintf(a.io.Out, "\nWould write %s:\n%s", underRoot(root, sdunit.PolicyPath(unit)), plan.Policy())
		}
		a.cutoverWarnings(svc, vars)
		return nil
	}
	if *creds {
		if err := a.writePolicy(root, unit, plan); err != nil {
			return err
		}
	}
	dp := underRoot(root, dropPath)
	if err := os.MkdirAll(filepath.Dir(dp), 0o755); err != nil {
		return fmt.Errorf("cut over %s: %w", unit, err)
	}
	if err := credentials.WriteFileAtomic(dp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("cut over %s: %w", unit, err)
	}
	out.Written = true
	if root == "/" {
		if err := systemdReload(ctx); err != nil {
			a.warnf("wrote %s but could not reload systemd: %v", dp, err)
			a.hintf("run: sudo systemctl daemon-reload")
		} else {
			out.Reloaded = true
		}
	}
	if a.g.JSON {
		return a.printJSON(out)
	}
	fmt.Fprintf(a.io.Out, "✓ Wrote %s", dp)
	if out.Reloaded {
		fmt.Fprintf(a.io.Out, " and reloaded systemd")
	}
	fmt.Fprintf(a.io.Out, ".\n")
	a.cutoverWarnings(svc, vars)
	if *creds {
		a.credentialsWarnings(root)
	}
	if root == "/" {
		fmt.Fprintf(a.io.Out, "Next: sudo systemctl restart %s, then reboot-test (guide step 5); then sudo ov systemd retire-env %s.\nUndo: sudo ov systemd rollback %s\n", unit, unit, unit)
	}
	return nil
}

// cutoverWarnings says what the drop-in cannot do for the user.
func (a *App) cutoverWarnings(svc *sdunit.Service, vars []sdunit.Var) {
	for _, v := range vars {
		if v.Status == sdunit.Same && v.From == "Environment=" {
			a.warnf("%s is written in %s (Environment=): the drop-in takes it out of the service's environment, but remove it from that file yourself", v.Name, v.File)
		}
	}
	if len(svc.OtherExec) > 0 {
		a.warnf("%s run without the variables of EnvironmentFile= after the cut-over (only ExecStart= goes through ov run)", strings.Join(svc.OtherExec, ", "))
	}
}

// readWithKeyOf reads app/env with the machine key as `ov run --machine-key` in the unit will (the
// key owned by the unit's User=), without touching the cache or the rollback floors of the caller.
func (a *App) readWithKeyOf(ctx context.Context, t target, root, keyFile string, svc *sdunit.Service) (*remote.Env, error) {
	owner, err := runAsUser(svc)
	if err != nil {
		return nil, withCode(ExitFailure, err)
	}
	uid, err := lookupUIDIn(root, owner)
	if err != nil {
		return nil, withCode(ExitFailure, err)
	}
	buf, err := credentials.ReadKeyFile(underRoot(root, keyFile), credentials.ReadOptions{}.WithOwner(uid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, withCode(ExitNotFound, err)
		}
		return nil, withHints(err, fmt.Sprintf("the unit runs ov run as %s: the key must be owned by %s, mode 0600, 32 bytes (ov doctor says more)", owner, owner))
	}
	mk, err := vault.ParseMachineKeyFile(buf.Bytes())
	buf.Destroy()
	if err != nil {
		return nil, fmt.Errorf("read machine key: %w", err)
	}
	defer mk.Wipe()
	var envServer string
	for _, as := range svc.Environment {
		if as.Name == "OV_SERVER" {
			envServer = as.Value
		}
	}
	server := envServer
	if root == "/" {
		server = a.unitServerURL("", envServer, owner)
	} else if server == "" {
		s, err := a.machineServerURL()
		if err != nil {
			return nil, err
		}
		server = s
	}
	if server == "" {
		return nil, usageErr("no server for the machine key",
			"pass --server URL, set OV_SERVER, or write server=URL to /etc/ov/config (`ov auth derive-machine-key --server-config` does)")
	}
	tok := mk.Token()
	c, err := api.NewClient(server, api.ClientOptions{Token: string(tok)})
	clear(tok)
	if err != nil {
		return nil, usageErr(err.Error())
	}
	hw, _ := remote.OpenHighWater("")
	hw.Soft = true
	r := &remote.MachineReader{Client: c, Key: mk, HighWater: hw}
	env, _, err := r.Read(ctx, t.app, t.env)
	if err != nil {
		return nil, machineError(err, t)
	}
	return env, nil
}

// runAsUser is the user ov run will run as in the unit: User= (root when unset), or root for an
// ExecStart= with the "+" prefix (full privileges). ExecStart= lines that disagree are refused, since
// one key file cannot be owned by both.
func runAsUser(svc *sdunit.Service) (string, error) {
	user := svc.User
	if user == "" {
		user = "root"
	}
	owners := map[string]bool{}
	for _, x := range svc.ExecStart {
		if strings.Contains(x.Prefix, "+") {
			owners["root"] = true
		} else {
			owners[user] = true
		}
	}
	if len(owners) > 1 {
		return "", fmt.Errorf("some ExecStart= lines run as root (the \"+\" prefix) and others as %s: one machine key file cannot be owned by both", user)
	}
	for o := range owners {
		return o, nil
	}
	return user, nil
}

// lookupUIDIn resolves a user name in the image's /etc/passwd (root "/": the system's users).
func lookupUIDIn(root, name string) (int, error) {
	if root == "/" {
		uid, _, err := doctor.LookupUser(name)
		return uid, err
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return 0, fmt.Errorf("look up user %q in %s: %w", name, root, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) >= 3 && p[0] == name {
			return strconv.Atoi(p[2])
		}
	}
	if name == "root" {
		return 0, nil
	}
	return 0, fmt.Errorf("look up user %q: not in %s", name, filepath.Join(root, "etc/passwd"))
}

func hostnameIn(root string) string {
	if root != "/" {
		if b, err := os.ReadFile(filepath.Join(root, "etc/hostname")); err == nil {
			return strings.TrimSpace(string(b))
		}
		return "localhost"
	}
	h, _ := os.Hostname()
	return h
}

// systemdRollback removes the drop-in (and the policy file of --credentials) and reloads.
func (a *App) systemdRollback(ctx context.Context, args []string) error {
	fl := a.flags()
	rootFlag := fl.String("root", "", "work on the image mounted at ROOT; no reload")
	rest, err := a.parse(fl, args)
	if err != nil {
		return err
	}
	unit, err := a.unitArg(rest)
	if err != nil {
		return err
	}
	root, err := rootArg(*rootFlag)
	if err != nil {
		return err
	}
	dp := underRoot(root, sdunit.DropInPath(unit))
	if err := os.Remove(dp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return withCode(ExitNotFound, fmt.Errorf("roll back %s: %s does not exist (not cut over)", unit, dp))
		}
		return fmt.Errorf("roll back %s: %w", unit, err)
	}
	syncDir(filepath.Dir(dp))
	pp := underRoot(root, sdunit.PolicyPath(unit))
	if err := os.Remove(pp); err == nil {
		syncDir(filepath.Dir(pp))
	}
	fmt.Fprintf(a.io.Out, "✓ Removed %s", dp)
	if root == "/" {
		if err := systemdReload(ctx); err != nil {
			fmt.Fprintln(a.io.Out, ".")
			a.warnf("could not reload systemd: %v", err)
			a.hintf("run: sudo systemctl daemon-reload")
			return nil
		}
		fmt.Fprintf(a.io.Out, " and reloaded systemd.\nThe unit reads its EnvironmentFile= again after: sudo systemctl restart %s\n", unit)
		return nil
	}
	fmt.Fprintln(a.io.Out, ".")
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// journalEntries returns the run-start entries of unit from the journal, every boot (tests replace
// it). Only journald's trusted _SYSTEMD_UNIT field ties an entry to the unit.
var journalEntries = func(ctx context.Context, root, unit string) ([]map[string]any, error) {
	args := []string{"--no-pager", "-o", "json", "_SYSTEMD_UNIT=" + unit, "OV_EVENT=" + sd.RunStartEvent}
	if root != "/" {
		args = append([]string{"--root", root}, args...)
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read the journal of %s: %v: %s", unit, err, strings.TrimSpace(stderr.String()))
	}
	return parseJournalJSON(bytes.NewReader(out))
}

func parseJournalJSON(r io.Reader) ([]map[string]any, error) {
	var out []map[string]any
	dec := json.NewDecoder(r)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("read the journal: %v", err)
		}
		out = append(out, m)
	}
}

// startedFromVault finds a run-start entry of app/env written by the unit at or after since.
func startedFromVault(entries []map[string]any, unit, app, env string, since time.Time) (time.Time, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		str := func(k string) string { s, _ := e[k].(string); return s }
		if str("_SYSTEMD_UNIT") != unit || str("OV_EVENT") != sd.RunStartEvent || str("OV_APP") != app || str("OV_ENV") != env {
			continue
		}
		us, err := strconv.ParseInt(str("__REALTIME_TIMESTAMP"), 10, 64)
		if err != nil {
			continue
		}
		at := time.UnixMicro(us)
		if !at.Before(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// systemdRetireEnv renames the environment files the cut-over took out of the unit, once the journal
// shows the unit started from the vault after the cut-over.
func (a *App) systemdRetireEnv(ctx context.Context, args []string) error {
	fl := a.flags()
	rootFlag := fl.String("root", "", "work on the image mounted at ROOT (its journal: journalctl --root)")
	rest, err := a.parse(fl, args)
	if err != nil {
		return err
	}
	unit, err := a.unitArg(rest)
	if err != nil {
		return err
	}
	root, err := rootArg(*rootFlag)
	if err != nil {
		return err
	}
	dp := underRoot(root, sdunit.DropInPath(unit))
	fi, err := os.Stat(dp)
	if err != nil {
		return withCode(ExitFailure, fmt.Errorf("retire the .env of %s: not cut over (%s: %w)", unit, dp, unwrapPathErr(err)),
			"first: sudo ov systemd cutover "+unit+" --app APP --env ENV --machine-key KEY")
	}
	mine, err := sdunit.Load(root, unit)
	if err != nil {
		return err
	}
	cur, err := mine.Service()
	if err != nil {
		return err
	}
	var run *doctor.RunArgs
	for _, x := range cur.ExecStart {
		var argv []string
		for _, w := range x.Argv {
			argv = append(argv, w.Text)
		}
		if r, ok := doctor.ParseRun(argv); ok {
			run = r
			break
		}
		if len(argv) > 1 && argv[1] == "run" {
			if r, ok := doctor.ParseRun(append([]string{"ov"}, argv[1:]...)); ok {
				run = r
				break
			}
		}
	}
	if run == nil || run.App == "" || run.Env == "" {
		return withCode(ExitFailure, fmt.Errorf("retire the .env of %s: its ExecStart= does not run ov run --app --env (was %s changed?)", unit, dp))
	}
	entries, err := journalEntries(ctx, root, unit)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	at, ok := startedFromVault(entries, unit, run.App, run.Env, fi.ModTime())
	if !ok {
		return withCode(ExitFailure, fmt.Errorf("retire the .env of %s: the journal shows no start of %s from the vault (%s/%s) since the cut-over at %s",
			unit, unit, run.App, run.Env, fi.ModTime().UTC().Format("2006-01-02 15:04:05 UTC")),
			"start it and reboot-test first (guide step 5): sudo systemctl restart "+unit+", sudo reboot, systemctl status "+unit)
	}
	base, err := sdunit.Load(root, unit, sdunit.DropInName)
	if err != nil {
		return err
	}
	bs, err := base.Service()
	if err != nil {
		return err
	}
	if len(cur.EnvironmentFiles) > 0 {
		return withCode(ExitFailure, fmt.Errorf("retire the .env of %s: EnvironmentFile= is still in effect after the drop-in", unit))
	}
	date := time.Now().UTC().Format("20060102")
	// Check every file first, so that a refusal leaves all of them in place.
	type move struct{ src, dst string }
	var moves []move
	for _, f := range sdunit.EnvFilePaths(bs, sdunit.SpecifiersFor(unit, hostnameIn(root))) {
		src := underRoot(root, f.Path)
		st, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("retire %s: %w", src, err)
		}
		if !st.Mode().IsRegular() {
			return withCode(ExitFailure, fmt.Errorf("retire %s: not a regular file (a symbolic link?); nothing was moved", src))
		}
		dst := src + ".retired-" + date
		if _, err := os.Lstat(dst); err == nil {
			return withCode(ExitFailure, fmt.Errorf("retire %s: %s: file exists; nothing was moved", src, dst))
		}
		moves = append(moves, move{src, dst})
	}
	n := 0
	for _, m := range moves {
		if err := renameNoReplace(m.src, m.dst); err != nil {
			return fmt.Errorf("retire %s: rename to %s: %w", m.src, m.dst, err)
		}
		if err := chmodNoFollow(m.dst, 0o600); err != nil {
			return fmt.Errorf("retire %s: renamed to %s, but chmod 0600 failed: %w", m.src, m.dst, err)
		}
		syncDir(filepath.Dir(m.dst))
		fmt.Fprintf(a.io.Out, "✓ Renamed %s to %s (0600)\n", m.src, m.dst)
		n++
	}
	if n == 0 {
		fmt.Fprintf(a.io.Out, "Nothing to retire: the environment files of %s are already gone.\n", unit)
		return nil
	}
	fmt.Fprintf(a.io.Out, "%s started from the vault at %s. Keep the retired file for one deploy cycle as your rollback, then delete it and rotate the secrets it held: they have been on disk in plaintext.\n",
		unit, at.UTC().Format("2006-01-02 15:04:05 UTC"))
	return nil
}

// chmodNoFollow changes the mode of the regular file at p through a descriptor opened without
// following a symbolic link.
func chmodNoFollow(p string, mode fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(mode)
}

// writePolicy writes the credential provider's policy of unit (root-owned 0644 when run as root, in
// a 0755 directory), atomically.
func (a *App) writePolicy(root, unit string, plan *sdunit.Plan) error {
	pp := underRoot(root, sdunit.PolicyPath(unit))
	if err := os.MkdirAll(filepath.Dir(pp), 0o755); err != nil {
		return fmt.Errorf("cut over %s: %w", unit, err)
	}
	if fi, err := os.Lstat(filepath.Dir(pp)); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return withCode(ExitFailure, fmt.Errorf("cut over %s: %s must be a directory writable only by its owner (root)", unit, filepath.Dir(pp)),
			"sudo ov agent install ... creates it root:root 0755")
	}
	if err := credentials.WriteFileAtomic(pp, []byte(plan.Policy()), 0o644); err != nil {
		return fmt.Errorf("cut over %s: %w", unit, err)
	}
	fmt.Fprintf(a.io.Out, "✓ Wrote %s\n", pp)
	return nil
}

// credentialsWarnings says when the credential provider is not installed where the drop-in is.
func (a *App) credentialsWarnings(root string) {
	if _, err := os.Lstat(underRoot(root, "/etc/systemd/system/ov-agent-credentials.socket")); err != nil {
		a.warnf("%s has no ov-agent-credentials.socket: the unit cannot get its credentials until the system agent serves them", underRoot(root, "/etc/systemd/system"))
		a.hintf("run: sudo ov agent install --machine-key KEY --app APP --env ENV --user USER --enable (again: it adds the socket)")
	}
}

// readWithAgentKey reads app/env for `cutover --credentials --machine-key`: with the system agent's
// key, which is owned by ov-agent.service's User= (the unit's User= need not be the same).
func (a *App) readWithAgentKey(ctx context.Context, t target, root, keyFile string) (*remote.Env, error) {
	au, err := sdunit.Load(root, "ov-agent.service")
	if err != nil {
		return nil, withCode(ExitFailure, fmt.Errorf("read the system agent's unit: %w", err),
			"--credentials needs the system agent: sudo ov agent install --machine-key KEY --app APP --env ENV --user USER --enable")
	}
	asvc, err := au.Service()
	if err != nil {
		return nil, err
	}
	return a.readWithKeyOf(ctx, t, root, keyFile, asvc)
}
