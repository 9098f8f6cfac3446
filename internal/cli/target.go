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
	return checkScopeFlags(t.app, t.env)
}

// checkScopeFlags checks the values of --app and --env by the rule of internal/names (an empty value
// is not given, and passes). Every command calls it before a password, a key derivation or the network.
func checkScopeFlags(app string, envs ...string) error {
	if err := checkScopeFlag("--app", "app", app); err != nil {
		return err
	}
	for _, e := range envs {
		if err := checkScopeFlag("--env", "env", e); err != nil {
			return err
		}
	}
	return nil
}

// checkScopeFlag checks one app or env name given to flag; kind ("app", "env") names it in the error.
func checkScopeFlag(flag, kind, v string) error {
	if v == "" {
		return nil
	}
	if _, err := names.NormalizeScope(kind, v); err != nil {
		return usageErr(fmt.Sprintf("invalid %s: %v", flag, err), "app and env names: "+names.ScopeRule)
	}
	return nil
}
