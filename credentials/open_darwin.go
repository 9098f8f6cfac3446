// SPDX-License-Identifier: Apache-2.0

package credentials

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const fileOpenFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY

func openat(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDir opens dir refusing symbolic links in every component: an lstat walk
// (for macOS before 11) plus O_NOFOLLOW_ANY. Note that /etc, /tmp and /var
// are symbolic links into /private on macOS.
func openDir(dir string, _ bool) (int, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return -1, err
	}
	p := "/"
	for _, name := range strings.Split(abs, "/") {
		if name == "" {
			continue
		}
		p = filepath.Join(p, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, unix.ELOOP
		}
	}
	return openat(unix.AT_FDCWD, abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW_ANY)
}

func openFileAt(dirfd int, name string) (int, error) {
	return openat(dirfd, name, fileOpenFlags|unix.O_NOFOLLOW_ANY)
}

func openParent(fd int) (int, error) {
	return openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
}

func fdPath(_ int, fallback string) string { return fallback }

// systemdACLGrantsOnly: there is no systemd on macOS.
func systemdACLGrantsOnly(int, uint32) bool { return false }

func renameNoReplace(dirfd int, from, to string) error {
	err := unix.RenameatxNp(dirfd, from, dirfd, to, unix.RENAME_EXCL)
	if err != unix.ENOTSUP && err != unix.EINVAL {
		return err
	}
	return linkUnlink(dirfd, from, to)
}
