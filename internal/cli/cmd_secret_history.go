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
)

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
