// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"os"
	"path/filepath"
)

// stateDir is $XDG_STATE_HOME/ov or ~/.local/state/ov; "" when there is no home directory (then
// rollback floors are kept in memory only, and ov says so).
func (a *App) stateDir() string {
	if d := a.env("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ov")
	}
	if home := a.home(); home != "" {
		return filepath.Join(home, ".local", "state", "ov")
	}
	return ""
}

// home is $HOME, else the passwd entry's home directory; "" when neither is an absolute path.
func (a *App) home() string {
	home := a.env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if !filepath.IsAbs(home) {
		return ""
	}
	return home
}

// stateFile joins a file name to dir, or returns "" (memory only) when dir is "".
func stateFile(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

// machineStateDir keeps the rollback floors of machines: $STATE_DIRECTORY under systemd, else the
// user's state directory.
func (a *App) machineStateDir() string {
	if d := a.env("STATE_DIRECTORY"); d != "" {
		return filepath.SplitList(d)[0]
	}
	return a.stateDir()
}

// cacheDir is $CACHE_DIRECTORY under systemd, else $XDG_CACHE_HOME/ov or ~/.cache/ov.
func (a *App) cacheDir() string {
	if d := a.env("CACHE_DIRECTORY"); d != "" {
		return filepath.SplitList(d)[0]
	}
	if d := a.env("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ov")
	}
	if home := a.home(); home != "" {
		return filepath.Join(home, ".cache", "ov")
	}
	return ""
}
