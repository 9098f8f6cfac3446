// SPDX-License-Identifier: Apache-2.0

package secmem

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// advise excludes mem from core dumps and zeroes it in forked children. Both
// are best effort: MADV_WIPEONFORK needs Linux 4.14, and a failure leaves the
// memory usable.
func advise(mem []byte) {
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP)
	_ = unix.Madvise(mem, unix.MADV_WIPEONFORK)
}

// Harden prepares a process that holds keys: PR_SET_DUMPABLE 0 (no core
// dump; /proc/PID/{mem,environ,maps} become root-owned; same-uid processes can
// no longer ptrace it) and RLIMIT_CORE 0. Call it first thing in `ov run`,
// `ov agent` and any command that unwraps keys. It returns an error only when
// one of the two calls fails.
func Harden() error {
	var errs []error
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		errs = append(errs, fmt.Errorf("harden process: prctl PR_SET_DUMPABLE: %w", err))
	}
	if err := lowerCoreLimit(); err != nil {
		errs = append(errs, fmt.Errorf("harden process: set RLIMIT_CORE to 0: %w", err))
	}
	return errors.Join(errs...)
}
