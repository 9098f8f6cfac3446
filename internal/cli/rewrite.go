// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// rewriteKeyInPlace replaces the 32 bytes of an existing key file that belongs to the caller, in a
// directory the caller cannot write (the user guide's /etc/ov after `ov agent install` made it
// root-owned). It opens the file without following links, checks it on the descriptor (regular, one
// link, owned by the caller, exactly len(key) bytes, no group or world bits), writes the new key in
// one pwrite of the same size and fsyncs it.
func rewriteKeyInPlace(path string, key []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("rewrite machine key %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("rewrite machine key %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("rewrite machine key %s: not a regular file", path)
	case st.Nlink != 1:
		return fmt.Errorf("rewrite machine key %s: it has %d hard links", path, st.Nlink)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("rewrite machine key %s: owned by uid %d, not you", path, st.Uid)
	case st.Size != int64(len(key)):
		return fmt.Errorf("rewrite machine key %s: is %d bytes, want %d", path, st.Size, len(key))
	case st.Mode&0o077 != 0:
		return fmt.Errorf("rewrite machine key %s: mode %04o is too open", path, st.Mode&0o7777)
	}
	if n, err := unix.Pwrite(fd, key, 0); err != nil || n != len(key) {
		return fmt.Errorf("rewrite machine key %s: short write (%d bytes): %v", path, n, err)
	}
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("rewrite machine key %s: %w", path, err)
	}
	return nil
}
