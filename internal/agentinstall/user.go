// SPDX-License-Identifier: Apache-2.0

package agentinstall

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/units"
)

// UserOptions say where `ov agent start` puts the user agent's units when
// the package did not install them in /usr/lib/systemd/user.
type UserOptions struct {
	// Dir receives the units (default $XDG_CONFIG_HOME/systemd/user, or
	// ~/.config/systemd/user).
	Dir string
	// Binary is ov's absolute path (default: as for Install).
	Binary string
	// Start asks the user's systemd to reload, enable and start
	// ov-agent-user.socket.
	Start bool
}

// InstallUser writes ov-agent-user.socket and ov-agent-user.service for the
// calling user (0644, atomically, unchanged files left alone) and, with
// Start, starts the socket through the user's systemd. Errors wrap
// [sd.ErrNoSystemd] when there is no user manager (the caller then runs the
// agent itself).
func InstallUser(ctx context.Context, o UserOptions) (*Result, error) {
	if o.Dir == "" {
		base := os.Getenv("XDG_CONFIG_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("install user agent: %w", err)
			}
			base = filepath.Join(home, ".config")
		}
		o.Dir = filepath.Join(base, "systemd", "user")
	}
	if o.Binary == "" {
		o.Binary = defaultBinary()
	}
	if !filepath.IsAbs(o.Binary) || !filepath.IsAbs(o.Dir) {
		return nil, invalid("install user agent: binary and unit directory must be absolute paths")
	}
	res := &Result{Binary: o.Binary, UID: os.Getuid(), GID: os.Getgid()}
	w := &writer{chown: false}
	defer w.cleanup()
	for _, name := range units.UserUnits {
		b, err := units.Render(name, units.Data{Binary: o.Binary})
		if err != nil {
			return nil, invalid("install user agent: %v", err)
		}
		if err := w.stage(filepath.Join(o.Dir, name), b); err != nil {
			return nil, err
		}
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	res.Files = w.files
	if !o.Start {
		return res, nil
	}
	m, err := sd.UserManager(ctx)
	if err != nil {
		return res, fmt.Errorf("start user agent: %w", err)
	}
	defer m.Close()
	if err := m.Reload(ctx); err != nil {
		return res, fmt.Errorf("start user agent: %w", err)
	}
	if err := m.Enable(ctx, units.UserAgentSocket); err != nil {
		return res, fmt.Errorf("start user agent: %w", err)
	}
	if w.changed(units.UserAgentService) {
		if err := m.TryRestart(ctx, units.UserAgentService); err != nil {
			return res, fmt.Errorf("start user agent: %w", err)
		}
	}
	if err := m.Start(ctx, units.UserAgentSocket); err != nil {
		return res, fmt.Errorf("start user agent: %w", err)
	}
	res.Enabled = true
	return res, nil
}
