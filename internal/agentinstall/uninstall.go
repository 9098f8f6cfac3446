// SPDX-License-Identifier: Apache-2.0

package agentinstall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/polkit"
	"github.com/opaquevault/opaquevault/units"
)

// UninstallOptions are the flags of `ov agent uninstall`.
type UninstallOptions struct {
	// Root, as for Install: remove under it, and do not talk to systemd.
	Root string
}

// Uninstall stops and disables the agent through systemd (without Root;
// when systemd is not running that is a warning), removes the units, the
// D-Bus policy and the rendezvous file, and reloads systemd. It leaves
// /etc/ov and the machine key alone. Running it twice is harmless.
func Uninstall(ctx context.Context, o UninstallOptions) (*Result, error) {
	if o.Root != "" {
		r, err := filepath.Abs(o.Root)
		if err != nil {
			return nil, invalid("uninstall agent: --root: %v", err)
		}
		o.Root = r
	} else if os.Geteuid() != 0 {
		return nil, fmt.Errorf("uninstall agent: must run as root: %w", fs.ErrPermission)
	}
	res := &Result{}
	var m *sd.Manager
	if o.Root == "" {
		var err error
		m, err = sd.SystemManager(ctx)
		if err != nil {
			res.Warnings = append(res.Warnings, err.Error()+": units not stopped or disabled")
		} else {
			defer m.Close()
			installed := []string{units.AgentSocket, units.AgentService}
			// An agent installed before the credential provider has no such socket.
			if _, err := os.Lstat(filepath.Join(UnitDir, units.AgentCredentialsSocket)); err == nil {
				installed = append(installed, units.AgentCredentialsSocket)
			}
			for _, u := range installed {
				if err := m.Stop(ctx, u); err != nil {
					return res, fmt.Errorf("uninstall agent: %w", err)
				}
			}
			if err := m.Disable(ctx, installed...); err != nil {
				return res, fmt.Errorf("uninstall agent: %w", err)
			}
		}
	}
	paths := []string{
		filepath.Join(UnitDir, units.AgentSocket),
		filepath.Join(UnitDir, units.AgentCredentialsSocket),
		filepath.Join(UnitDir, units.AgentService),
		filepath.Join(BusPolicyDir, polkit.BusPolicyFile),
		filepath.Join(PolkitRulesDir, polkit.RestartRulesFile),
		Rendezvous,
	}
	dirs := map[string]bool{}
	for _, p := range paths {
		real := under(o.Root, p)
		fi, err := os.Lstat(real)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("uninstall agent: %w", err)
		}
		if fi.IsDir() {
			return res, fmt.Errorf("uninstall agent: %s is a directory; not removed", p)
		}
		if err := os.Remove(real); err != nil {
			return res, fmt.Errorf("uninstall agent: %w", err)
		}
		res.Removed = append(res.Removed, File{Path: p, Written: real, Mode: fi.Mode().Perm(), Changed: true})
		dirs[filepath.Dir(real)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return res, err
		}
	}
	if m != nil {
		if err := m.Reload(ctx); err != nil {
			return res, fmt.Errorf("uninstall agent: %w", err)
		}
	}
	return res, nil
}
