// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/opaquevault/opaquevault/internal/remote"
)

func (a *App) envList(ctx context.Context, args []string) error {
	fs := a.flags()
	passwordNotNeeded(fs)
	app := fs.String("app", "", "the app (required)")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if *app == "" {
		return usageErr("--app is required", "usage: ov "+a.cmd.usage)
	}
	if err := checkScopeFlags(*app); err != nil {
		return err
	}
	cfg, cl, err := a.loggedInClient()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	list, err := cl.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list envs: %w", err)
	}
	list = remote.Published(list)
	for _, ap := range list.Apps {
		if ap.Name != *app {
			continue
		}
		sort.Slice(ap.Envs, func(i, j int) bool { return ap.Envs[i].Name < ap.Envs[j].Name })
		if a.g.JSON {
			type env struct {
				Name    string    `json:"name"`
				ID      string    `json:"env_id"`
				Count   int       `json:"count"`
				Seq     uint64    `json:"seq"`
				Updated time.Time `json:"updated_at"`
			}
			out := struct {
				App  string `json:"app"`
				Envs []env  `json:"envs"`
			}{App: ap.Name, Envs: []env{}}
			for _, e := range ap.Envs {
				out.Envs = append(out.Envs, env{Name: e.Name, ID: e.EnvID, Count: e.Count, Seq: e.Seq, Updated: e.UpdatedAt})
			}
			return a.printJSON(out)
		}
		for _, e := range ap.Envs {
			fmt.Fprintf(a.io.Out, "%s\t%d secret(s)\n", e.Name, e.Count)
		}
		return nil
	}
	return withCode(ExitNotFound, fmt.Errorf("no app %q on the server", *app), "`ov app list` shows the apps")
}
