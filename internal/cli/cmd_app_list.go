// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/opaquevault/opaquevault/internal/remote"
)

func (a *App) appList(ctx context.Context, args []string) error {
	fs := a.flags()
	passwordNotNeeded(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	cfg, cl, err := a.loggedInClient()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	list, err := cl.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	list = remote.Published(list)
	sort.Slice(list.Apps, func(i, j int) bool { return list.Apps[i].Name < list.Apps[j].Name })
	if a.g.JSON {
		type app struct {
			Name string   `json:"name"`
			ID   string   `json:"app_id"`
			Envs []string `json:"envs"`
		}
		out := struct {
			Apps []app `json:"apps"`
		}{Apps: []app{}}
		for _, ap := range list.Apps {
			x := app{Name: ap.Name, ID: ap.AppID, Envs: []string{}}
			for _, e := range ap.Envs {
				x.Envs = append(x.Envs, e.Name)
			}
			sort.Strings(x.Envs)
			out.Apps = append(out.Apps, x)
		}
		return a.printJSON(out)
	}
	for _, ap := range list.Apps {
		var envs []string
		for _, e := range ap.Envs {
			envs = append(envs, e.Name)
		}
		sort.Strings(envs)
		fmt.Fprintf(a.io.Out, "%s\t%s\n", ap.Name, strings.Join(envs, ","))
	}
	return nil
}
