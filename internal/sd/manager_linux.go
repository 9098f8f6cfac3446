// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Manager is a D-Bus connection to a systemd service manager (PID 1, or the
// user's `systemd --user`). Close it when done.
type Manager struct {
	c    *sddbus.Conn
	what string
}

// SystemManager connects to PID 1: over its private socket
// /run/systemd/private when running as root (no dbus-daemon needed), over the
// system bus otherwise. It fails with [ErrNoSystemd] when the system was not
// booted with systemd.
func SystemManager(ctx context.Context) (*Manager, error) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, fmt.Errorf("connect to systemd: %w", ErrNoSystemd)
	}
	var c *sddbus.Conn
	var err error
	if os.Geteuid() == 0 {
		c, err = sddbus.NewSystemdConnectionContext(ctx)
	}
	if c == nil {
		c, err = sddbus.NewSystemConnectionContext(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to systemd: %w", err)
	}
	return &Manager{c: c, what: "systemd"}, nil
}

// UserManager connects to the calling user's `systemd --user`, through
// $XDG_RUNTIME_DIR/systemd/private when it exists, the session bus
// otherwise. It fails with [ErrNoSystemd] when there is no user manager.
func UserManager(ctx context.Context) (*Manager, error) {
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		return nil, fmt.Errorf("connect to the user's systemd: $XDG_RUNTIME_DIR is not set: %w", ErrNoSystemd)
	}
	private := filepath.Join(rt, "systemd", "private")
	if _, err := os.Stat(private); err != nil {
		return nil, fmt.Errorf("connect to the user's systemd: %w", ErrNoSystemd)
	}
	c, err := sddbus.NewConnection(func() (*dbus.Conn, error) {
		conn, err := dbus.Dial("unix:path="+private, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the user's systemd: %w", err)
	}
	return &Manager{c: c, what: "user systemd"}, nil
}

// Close closes the connection.
func (m *Manager) Close() { m.c.Close() }

// Reload makes the manager re-read unit files (systemctl daemon-reload).
func (m *Manager) Reload(ctx context.Context) error {
	if err := m.c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reload %s: %w", m.what, err)
	}
	return nil
}

// Enable enables unit files by name (systemctl enable), replacing
// conflicting symlinks.
func (m *Manager) Enable(ctx context.Context, units ...string) error {
	if _, _, err := m.c.EnableUnitFilesContext(ctx, units, false, true); err != nil {
		return fmt.Errorf("enable %v: %w", units, err)
	}
	return nil
}

// Disable disables unit files by name (systemctl disable).
func (m *Manager) Disable(ctx context.Context, units ...string) error {
	if _, err := m.c.DisableUnitFilesContext(ctx, units, false); err != nil {
		return fmt.Errorf("disable %v: %w", units, err)
	}
	return nil
}

// Start starts unit and waits for its job to finish.
func (m *Manager) Start(ctx context.Context, unit string) error {
	return m.job(ctx, "start", unit, m.c.StartUnitContext)
}

// Stop stops unit and waits for its job to finish.
func (m *Manager) Stop(ctx context.Context, unit string) error {
	return m.job(ctx, "stop", unit, m.c.StopUnitContext)
}

// TryRestart restarts unit if it is running, and waits for the job.
func (m *Manager) TryRestart(ctx context.Context, unit string) error {
	return m.job(ctx, "restart", unit, m.c.TryRestartUnitContext)
}

// ActiveState returns the unit's ActiveState ("active", "inactive",
// "failed", …).
func (m *Manager) ActiveState(ctx context.Context, unit string) (string, error) {
	p, err := m.c.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return "", fmt.Errorf("get state of %s: %w", unit, err)
	}
	s, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("get state of %s: unexpected type %s", unit, p.Value.Signature())
	}
	return s, nil
}

// errJob is the result of a job that did not finish with "done".
var errJob = errors.New("job did not complete")

func (m *Manager) job(ctx context.Context, verb, unit string, f func(context.Context, string, string, chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := f(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case r := <-ch:
		if r != "done" && r != "skipped" {
			return fmt.Errorf("%s %s: %w: %s", verb, unit, errJob, r)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}
