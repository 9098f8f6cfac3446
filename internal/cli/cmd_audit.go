// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

// parseSince reads a Go duration or a number of days ("7d").
func parseSince(s string) (time.Duration, error) {
	d, err := readDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--since %q: %w", s, err)
	}
	return d, nil
}

type auditOut struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	Result     string    `json:"result"`
	Who        string    `json:"who"`
	Actor      string    `json:"actor"`
	Target     string    `json:"target,omitempty"`
	What       string    `json:"what,omitempty"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
}

func (a *App) audit(ctx context.Context, args []string) error {
	fs := a.flags()
	app := fs.String("app", "", "only entries about this app's environments")
	env := fs.String("env", "", "only entries about this environment (with --app)")
	since := fs.String("since", "", "only entries newer than this (24h, 90m, 7d)")
	limit := fs.Int("limit", 50, "entries per page (at most 1000)")
	before := fs.Int64("before", 0, "the page older than this entry id")
	var u unlockFlags
	u.add(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := a.noArgs(args); err != nil {
		return err
	}
	if *env != "" && *app == "" {
		return usageErr("--env needs --app", "usage: ov "+a.cmd.usage)
	}
	if err := checkScopeFlags(*app, *env); err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usageErr("--limit must be between 1 and 1000")
	}
	q := api.AuditQuery{Limit: *limit, BeforeID: *before}
	if *since != "" {
		d, err := parseSince(*since)
		if err != nil {
			return usageErr(err.Error())
		}
		q.Since = time.Now().Add(-d)
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	cl := s.vault.Client
	apps, err := cl.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	// Targets the server names by id, shown by name; --app/--env select by id.
	names := map[string]string{}
	keep := map[string]bool{}
	found := *app == ""
	for _, ap := range apps.Apps {
		names["app:"+ap.AppID] = ap.Name
		for _, e := range ap.Envs {
			names["env:"+e.EnvID] = ap.Name + "/" + e.Name
			if ap.Name == *app && (*env == "" || e.Name == *env) {
				keep["env:"+e.EnvID] = true
				found = true
			}
		}
		if ap.Name == *app && *env == "" {
			keep["app:"+ap.AppID] = true
			found = true
		}
	}
	if !found {
		if *env != "" {
			return withCode(ExitNotFound, fmt.Errorf("no env %q in app %q", *env, *app), fmt.Sprintf("`ov env list --app %s` shows its envs", *app))
		}
		return withCode(ExitNotFound, fmt.Errorf("no app %q on the server", *app), "`ov app list` shows the apps")
	}
	if *env != "" {
		for k := range keep {
			q.Target = k
		}
	}
	w := a.writers(ctx, cl)
	var out []auditOut
	last := int64(0)
	full := false
	// With --app alone the filter runs here, so read pages until one is full or the log ends.
	for pages := 0; pages < 20; pages++ {
		page, err := cl.AuditPage(ctx, q)
		if err != nil {
			return fmt.Errorf("read the audit log: %w", err)
		}
		for _, e := range page.Entries {
			last = e.ID
			if *app != "" && *env == "" && !keep[e.Target] {
				continue
			}
			out = append(out, auditOut{ID: e.ID, Time: e.Time, Action: e.Action, Result: e.Result, Who: w.name(e.Actor), Actor: e.Actor,
				Target: e.Target, What: names[e.Target], RemoteAddr: e.RemoteAddr})
			if len(out) == *limit {
				break
			}
		}
		if len(out) >= *limit {
			full = true
			break
		}
		if len(page.Entries) < q.Limit || *app == "" || *env != "" {
			full = len(page.Entries) == q.Limit
			break
		}
		q.BeforeID = last
	}
	if len(out) > 0 {
		last = out[len(out)-1].ID
	}
	if a.g.JSON {
		next := int64(0)
		if full {
			next = last
		}
		if out == nil {
			out = []auditOut{}
		}
		return a.printJSON(map[string]any{"entries": out, "next_before": next})
	}
	for _, e := range out {
		what := e.What
		if what == "" {
			what = e.Target
		}
		fmt.Fprintf(a.io.Out, "%-7d %s  %-20s %-6s %-28s %-24s %s\n", e.ID, e.Time.UTC().Format("2006-01-02 15:04:05"), e.Action, e.Result, e.Who, what, e.RemoteAddr)
	}
	fmt.Fprintf(a.io.Err, "%d entr%s, newest first\n", len(out), map[bool]string{true: "y", false: "ies"}[len(out) == 1])
	if full {
		fmt.Fprintf(a.io.Err, "more: ov audit --before %d\n", last)
	}
	return nil
}
