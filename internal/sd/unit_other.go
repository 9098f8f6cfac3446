// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package sd

import "context"

// Unit fails with [ErrNoSystemd].
func (*Manager) Unit(context.Context, string) (*UnitInfo, error) { return nil, ErrNoSystemd }
