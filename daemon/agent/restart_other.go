// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package agent

import (
	"context"

	"github.com/opaquevault/opaquevault/internal/sd"
)

// connectUnits fails: there is no systemd here.
func connectUnits(ctx context.Context) (*sd.Manager, error) { return sd.SystemManager(ctx) }
