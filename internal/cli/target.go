// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/internal/names"
)

// target is --app and --env.
type target struct{ app, env string }

func (t *target) add(fs *pflag.FlagSet) {
	fs.StringVar(&t.app, "app", "", "the app (required)")
	fs.StringVar(&t.env, "env", "", "the environment, such as production (required)")
}

func (a *App) need(t target) error {
	switch {
	case t.app == "":
		return usageErr("--app is required", "usage: ov "+a.cmd.usage)
	case t.env == "":
		return usageErr("--env is required", "usage: ov "+a.cmd.usage)
	}
	for _, n := range []string{t.app, t.env} {
		if _, err := names.NormalizeScope("app or env", n); err != nil {
			return usageErr(fmt.Sprintf("invalid app or env name %q: %s", n, names.ScopeRule))
		}
	}
	return nil
}
