// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package secmem

import (
	"sync"

	"golang.org/x/sys/unix"
)

var core struct {
	mu    sync.Mutex
	saved *unix.Rlimit
}

// lowerCoreLimit sets the soft RLIMIT_CORE to 0 and keeps the hard limit, so that the original can
// be restored for a program this process executes.
func lowerCoreLimit() error {
	core.mu.Lock()
	defer core.mu.Unlock()
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &cur); err != nil {
		return err
	}
	if core.saved == nil {
		saved := cur
		core.saved = &saved
	}
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: cur.Max})
}

// RestoreCoreLimit gives back the RLIMIT_CORE that [Harden] lowered. `ov run` calls it just before
// execve, so that the program gets the core limit its caller (or systemd's LimitCORE=) set.
func RestoreCoreLimit() error {
	core.mu.Lock()
	defer core.mu.Unlock()
	if core.saved == nil {
		return nil
	}
	return unix.Setrlimit(unix.RLIMIT_CORE, core.saved)
}
