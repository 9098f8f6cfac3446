// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/daemon/agent"
)

// Restarts when a secret changes (docs/agent.md): the agent watches the envs that the policies in
// /etc/ov/restart.d name and asks systemd to restart their units. `ov run` cannot do it: it
// replaced itself with the program and is gone.

// restartDirFlag adds --restart-dir to `ov agent serve`; the returned function gives the directory
// to use (none for a user agent unless given).
func restartDirFlag(fs *pflag.FlagSet) func(userMode bool) string {
	dir := fs.String("restart-dir", agent.DefaultRestartDir, "restart policies (UNIT.conf, root-owned): restart units when their secrets change; \"\" turns it off")
	return func(userMode bool) string {
		if userMode && !fs.Changed("restart-dir") {
			return ""
		}
		return *dir
	}
}

// watchRefusal adds a hidden --watch to `ov run`; the returned function refuses it.
func watchRefusal(fs *pflag.FlagSet) func() error {
	w := fs.Bool("watch", false, "refused: see `ov help run`")
	_ = fs.MarkHidden("watch")
	return func() error {
		if !*w {
			return nil
		}
		return usageErr("run --watch: ov run replaces itself with the program (execve), so nothing is left to restart it when a secret changes",
			"let systemd restart the unit: write /etc/ov/restart.d/UNIT.service.conf (app, env, names) and the agent restarts it when one of those secrets changes (docs/agent.md, \"Restarts when a secret changes\")")
	}
}

// WatchEnv lets the agent long-poll ov-server for commits to an env (agent.EnvWatcher). It uses
// the client's token only, never the machine key.
func (s *machineSource) WatchEnv(ctx context.Context, envID string, after uint64) (uint64, bool, error) {
	return s.r.Client.WatchEnv(ctx, envID, after)
}

// WatchEnv is agent.EnvWatcher for an account key.
func (s *vaultSource) WatchEnv(ctx context.Context, envID string, after uint64) (uint64, bool, error) {
	return s.v.Client.WatchEnv(ctx, envID, after)
}
