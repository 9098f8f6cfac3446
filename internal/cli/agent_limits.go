// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/daemon/agent"
)

// agentLimitFlags adds the flags of the agent's local policy (crypto.md
// §4.5) to fs; the returned function gives the agent.Limits they set, or
// an error naming a bad value.
func agentLimitFlags(fs *pflag.FlagSet) func() (agent.Limits, error) {
	d := agent.DefaultLimits
	idle := durationFlag(fs, "idle-lock", d.IdleLock, "wipe a key handed over by `ov agent unlock` after this long without a read (0: never; a machine key is never idle-locked)")
	denials := fs.Int("lockout-denials", d.LockoutDenials, "lock the agent after this many denied requests of its own uid or root within --lockout-window (0: never)")
	window := durationFlag(fs, "lockout-window", d.LockoutWindow, "the window of --lockout-denials")
	distinct := fs.Int("distinct-secrets-warn", d.DistinctSecrets, "log a warning when one uid reads more distinct secrets of one app/env than this within --distinct-window (0: never)")
	dwindow := durationFlag(fs, "distinct-window", d.DistinctWindow, "the window of --distinct-secrets-warn")
	conns := fs.Int("max-connections", d.MaxConns, "connections served at once")
	perUID := fs.Int("max-connections-per-uid", d.MaxConnsPerUID, "connections of one uid served at once (below --max-connections)")
	return func() (agent.Limits, error) {
		off := func(v int) int {
			if v == 0 {
				return -1
			}
			return v
		}
		l := agent.Limits{MaxConns: *conns, MaxConnsPerUID: *perUID, IdleLock: *idle, LockoutDenials: off(*denials),
			LockoutWindow: *window, DistinctSecrets: off(*distinct), DistinctWindow: *dwindow}
		if *idle == 0 {
			l.IdleLock = -1
		}
		switch {
		case *idle < 0:
			return l, fmt.Errorf("--idle-lock %v: give a positive duration, or 0 for never", *idle)
		case *denials < 0 || *distinct < 0:
			return l, fmt.Errorf("--lockout-denials and --distinct-secrets-warn take a count, or 0 for never")
		case *window <= 0 || *dwindow <= 0:
			return l, fmt.Errorf("--lockout-window and --distinct-window take a positive duration")
		case *conns < 2 || *perUID < 1 || *perUID >= *conns:
			return l, fmt.Errorf("--max-connections-per-uid %d must be at least 1 and below --max-connections %d", *perUID, *conns)
		}
		return l, nil
	}
}
