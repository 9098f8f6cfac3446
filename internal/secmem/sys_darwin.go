// SPDX-License-Identifier: Apache-2.0

package secmem

import "fmt"

// advise is a no-op on macOS: there is no MADV_DONTDUMP or MADV_WIPEONFORK.
func advise([]byte) {}

// Harden sets RLIMIT_CORE to 0. macOS has no PR_SET_DUMPABLE; hardened-runtime
// code signing is what keeps other processes from attaching there.
func Harden() error {
	if err := lowerCoreLimit(); err != nil {
		return fmt.Errorf("harden process: set RLIMIT_CORE to 0: %w", err)
	}
	return nil
}
