// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/remote"
)

// who names the writers of a history: device names and machine labels, from the server's lists.
type who struct{ names map[string]string }

func (a *App) writers(ctx context.Context, cl *api.Client) *who {
	w := &who{names: map[string]string{}}
	if ds, err := cl.Devices(ctx); err == nil {
		for _, d := range ds.Devices {
			w.names["device:"+d.KeyID] = "device " + d.Name
		}
	}
	if ms, err := cl.Machines(ctx); err == nil {
		for _, m := range ms.Machines {
			w.names["machine:"+m.MachineID] = "machine " + m.Label
		}
	}
	return w
}

// name returns the writer's name, or the actor as the server gave it (a revoked machine is no
// longer listed).
func (w *who) name(actor string) string {
	if n, ok := w.names[actor]; ok {
		return n
	}
	if actor == "" {
		return "(before history)"
	}
	return actor
}

// history parses the flags (NAME when named), unlocks and reads the verified history.
func (a *App) history(ctx context.Context, fs *pflag.FlagSet, args []string, t *target, named bool) (*session, *remote.History, []string, error) {
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := a.need(*t); err != nil {
		return nil, nil, nil, err
	}
	if named {
		if len(args) != 1 {
			return nil, nil, nil, usageErr(a.cmd.path+" takes one NAME", "usage: ov "+a.cmd.usage)
		}
		if err := checkVarName(args[0]); err != nil {
			return nil, nil, nil, usageErr(err.Error())
		}
	} else if err := a.noArgs(args); err != nil {
		return nil, nil, nil, err
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := s.vault.History(ctx, t.app, t.env)
	if err != nil {
		s.close()
		return nil, nil, nil, historyError(err, t.app, t.env)
	}
	return s, h, args, nil
}

func historyError(err error, app, env string) error {
	if errors.Is(err, remote.ErrTampered) {
		return withHints(err, "the server's history was refused: a past version was dropped, reordered, replaced or forged; nothing was shown or written")
	}
	return envError(err, app, env)
}

type versionOut struct {
	Version     uint64    `json:"version"`
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Writer      string    `json:"writer"`
	Actor       string    `json:"actor,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Pruned      bool      `json:"pruned,omitempty"`
	Value       *string   `json:"value,omitempty"`
}

func (a *App) secretHistory(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	show := fs.Bool("show-values", false, "print the values too, after a confirmation on the terminal")
	s, h, args, err := a.history(ctx, fs, args, &t, true)
	if err != nil {
		return err
	}
	defer s.close()
	defer h.Wipe()
	vs := h.Of(args[0])
	if len(vs) == 0 {
		return withCode(ExitNotFound, fmt.Errorf("history %q: no such secret in the history of %s/%s", args[0], t.app, t.env),
			fmt.Sprintf("`ov secret list --app %s --env %s` shows the names", t.app, t.env))
	}
	if *show {
		if err := confirmOnTerminal(fmt.Sprintf("Print %d value(s) of %s from %s/%s on this terminal? [y/N] ", len(vs), args[0], t.app, t.env)); err != nil {
			return err
		}
	}
	w := a.writers(ctx, s.vault.Client)
	out := make([]versionOut, 0, len(vs))
	for _, v := range vs {
		o := versionOut{Version: v.Version, Seq: v.Seq, Time: v.At, Writer: w.name(v.Actor), Actor: v.Actor, Fingerprint: v.Fingerprint, Pruned: v.Value == nil}
		if *show && v.Value != nil {
			val := string(v.Value)
			o.Value = &val
		}
		out = append(out, o)
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"app": t.app, "env": t.env, "name": args[0], "versions": out})
	}
	for _, o := range out {
		fp := o.Fingerprint
		if o.Pruned {
			fp = "(pruned)"
		}
		fmt.Fprintf(a.io.Out, "v%-4d %s  %-16s  %s", o.Version, o.Time.UTC().Format("2006-01-02 15:04:05 UTC"), fp, o.Writer)
		if o.Value != nil {
			fmt.Fprintf(a.io.Out, "  %s", *o.Value)
		}
		fmt.Fprintln(a.io.Out)
	}
	fmt.Fprintf(a.io.Err, "%d version(s) of %s in %s/%s; history verified (signed, chained)\n", len(out), args[0], t.app, t.env)
	return nil
}

// confirmOnTerminal asks on /dev/tty and succeeds only on "y" or "yes".
func confirmOnTerminal(question string) error {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return usageErr("--show-values asks for a confirmation on the terminal, and there is none", "run it from an interactive terminal")
	}
	defer tty.Close()
	fmt.Fprint(tty, question)
	line, err := bufio.NewReader(tty).ReadString('\n')
	if err != nil && line == "" {
		return errors.New("confirm: no answer; nothing was printed")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed; nothing was printed")
}

type manifestOut struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Writer   string    `json:"writer"`
	Actor    string    `json:"actor,omitempty"`
	Epoch    uint32    `json:"epoch"`
	Chained  bool      `json:"chained"`
	Rotated  bool      `json:"rotated,omitempty"`
	Added    []string  `json:"added"`
	Changed  []string  `json:"changed"`
	Removed  []string  `json:"removed"`
	IssuedAt time.Time `json:"issued_at"`
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *App) envHistory(ctx context.Context, args []string) error {
	fs := a.flags()
	var t target
	t.add(fs)
	s, h, _, err := a.history(ctx, fs, args, &t, false)
	if err != nil {
		return err
	}
	defer s.close()
	defer h.Wipe()
	w := a.writers(ctx, s.vault.Client)
	out := make([]manifestOut, 0, len(h.Manifests))
	for _, m := range h.Manifests {
		out = append(out, manifestOut{Seq: m.Seq, Time: m.At, Writer: w.name(m.Actor), Actor: m.Actor, Epoch: m.Epoch, Chained: m.Chained,
			Rotated: m.Rotated, Added: orEmpty(m.Added), Changed: orEmpty(m.Changed), Removed: orEmpty(m.Removed), IssuedAt: m.IssuedAt})
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"app": t.app, "env": t.env, "manifests": out})
	}
	for _, m := range out {
		var parts []string
		for _, p := range []struct {
			sign  string
			names []string
		}{{"+", m.Added}, {"~", m.Changed}, {"-", m.Removed}} {
			for _, n := range p.names {
				parts = append(parts, p.sign+n)
			}
		}
		if m.Rotated {
			parts = append(parts, fmt.Sprintf("(key rotated to epoch %d)", m.Epoch))
		}
		if len(parts) == 0 {
			parts = []string{"(no change)"}
		}
		fmt.Fprintf(a.io.Out, "seq %-4d %s  %s  %s\n", m.Seq, m.Time.UTC().Format("2006-01-02 15:04:05 UTC"), m.Writer, strings.Join(parts, " "))
	}
	fmt.Fprintf(a.io.Err, "%d manifest(s) of %s/%s; history verified (signed, chained)\n", len(out), t.app, t.env)
	return nil
}

func (a *App) secretRollback(ctx context.Context, args []string) error {
	return a.rollback(ctx, args, true)
}

func (a *App) envRollback(ctx context.Context, args []string) error {
	return a.rollback(ctx, args, false)
}

func (a *App) rollback(ctx context.Context, args []string, secret bool) error {
	fs := a.flags()
	var t target
	t.add(fs)
	what := map[bool]string{true: "VERSION", false: "SEQ"}[secret]
	to := fs.Uint64("to", 0, map[bool]string{true: "the version to go back to (required)", false: "the manifest seq to go back to (required)"}[secret])
	placeholder(fs, "to", what)
	dry := fs.Bool("dry-run", false, "show the names that would change; write nothing")
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := a.need(t); err != nil {
		return err
	}
	if *to == 0 {
		return usageErr("--to is required (a version or seq from the history, 1 or more)", "usage: ov "+a.cmd.usage)
	}
	if secret {
		if len(args) != 1 {
			return usageErr("secret rollback takes one NAME", "usage: ov "+a.cmd.usage)
		}
		if err := checkVarName(args[0]); err != nil {
			return usageErr(err.Error())
		}
	} else if err := a.noArgs(args); err != nil {
		return err
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	var res *remote.RollbackResult
	if secret {
		res, err = s.vault.RollbackSecret(ctx, t.app, t.env, args[0], *to, *dry)
	} else {
		res, err = s.vault.RollbackEnv(ctx, t.app, t.env, *to, *dry)
	}
	if errors.Is(err, remote.ErrNoSuchVersion) {
		what := "`ov env history --app %s --env %s` lists the seqs"
		if secret {
			what = "`ov secret history " + args[0] + " --app %s --env %s` lists the versions"
		}
		return withCode(ExitNotFound, err, fmt.Sprintf(what, t.app, t.env))
	}
	if err != nil {
		return historyError(err, t.app, t.env)
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"app": t.app, "env": t.env, "dry_run": *dry, "set": orEmpty(res.Set), "deleted": orEmpty(res.Delete), "seq": res.Seq})
	}
	verb, del := "rolled back", "deleted"
	if *dry {
		verb, del = "would roll back", "would delete"
	}
	for _, n := range res.Set {
		fmt.Fprintf(a.io.Out, "~ %s %s in %s/%s\n", n, verb, t.app, t.env)
	}
	for _, n := range res.Delete {
		fmt.Fprintf(a.io.Out, "- %s %s from %s/%s\n", n, del, t.app, t.env)
	}
	switch {
	case len(res.Set)+len(res.Delete) == 0:
		fmt.Fprintf(a.io.Err, "nothing to change: %s/%s already holds those values\n", t.app, t.env)
	case *dry:
		fmt.Fprintf(a.io.Err, "dry run: nothing was written\n")
	default:
		fmt.Fprintf(a.io.Err, "written as seq %d (history keeps every earlier version)\n", res.Seq)
	}
	return nil
}
