// SPDX-License-Identifier: Apache-2.0

package cli

// The helpers of the history commands (cmd_secret_history.go, cmd_env_history.go) and of `ov audit`:
// who wrote what, the verified history read, and the rollback both `secret rollback` and `env rollback` run.

import (
	"context"
	"errors"
	"fmt"

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

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
