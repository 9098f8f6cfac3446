// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"strings"
	"time"
)

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
