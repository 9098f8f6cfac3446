// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"context"
	"fmt"
	"strings"
)

// Unit reads a unit's state and, for a service, the configuration the manager has in effect. The
// manager loads the unit if it is not loaded; a unit without a file has LoadState "not-found".
func (m *Manager) Unit(ctx context.Context, name string) (*UnitInfo, error) {
	unit, err := m.c.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read unit %s: %w", name, err)
	}
	var svc map[string]any
	if strings.HasSuffix(name, ".service") {
		if svc, err = m.c.GetUnitTypePropertiesContext(ctx, name, "Service"); err != nil {
			return nil, fmt.Errorf("read service %s: %w", name, err)
		}
	}
	return decodeUnit(name, unit, svc)
}
