// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent

import (
	"context"
	"os"

	"github.com/opaquevault/opaquevault/internal/sd"
)

// connectUnits connects to PID 1 over the system bus ($DBUS_SYSTEM_BUS_ADDRESS when set), where
// polkit decides whether the agent's user may restart a unit (docs/agent.md).
func connectUnits(ctx context.Context) (*sd.Manager, error) {
	if addr := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); addr != "" {
		return sd.ManagerAt(ctx, addr)
	}
	return sd.SystemManager(ctx)
}
