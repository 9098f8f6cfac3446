// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"context"
	"fmt"
	"os"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// ManagerAt connects to the service manager on the bus at address (a D-Bus address such as
// "unix:path=/run/dbus/system_bus_socket"), for an agent told which bus to use, and for tests that
// run a stand-in org.freedesktop.systemd1 on a private bus.
func ManagerAt(ctx context.Context, address string) (*Manager, error) {
	c, err := sddbus.NewConnection(func() (*dbus.Conn, error) {
		conn, err := dbus.Dial(address, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connect to systemd: %w", err)
	}
	return &Manager{c: c, what: "systemd"}, nil
}

// ReloadOrTryRestart reloads unit if it supports reloading and restarts it otherwise, only if it
// is running (systemctl try-reload-or-restart: the D-Bus method ReloadOrTryRestartUnit, polkit
// verb "reload-or-try-restart"), and waits for its job.
func (m *Manager) ReloadOrTryRestart(ctx context.Context, unit string) error {
	return m.job(ctx, "reload-or-restart", unit, m.c.ReloadOrTryRestartUnitContext)
}
