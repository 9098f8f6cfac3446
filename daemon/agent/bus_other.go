// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package agent

import "context"

// startBus: there is no D-Bus object outside Linux.
func (a *agentState) startBus(context.Context) stateSink { return nopSink{} }
