// SPDX-License-Identifier: Apache-2.0

package credentials

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Tests set these to exercise the code paths for kernels without openat2
// (before 5.6) and file systems without RENAME_NOREPLACE.
var (
	openat2Disabled   bool
	renameat2Disabled bool
)

const (
	resolveNoLinks = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
	fileOpenFlags  = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
)

func openat2(dirfd int, path string, flags int, resolve uint64) (int, error) {
	if openat2Disabled {
		return -1, unix.ENOSYS
	}
	how := &unix.OpenHow{Flags: uint64(flags), Resolve: resolve}
	for {
		fd, err := unix.Openat2(dirfd, path, how)
		if err == unix.EPERM {
			// Old container seccomp profiles deny unknown syscalls with EPERM
			// instead of ENOSYS; the fallback is just as strict.
			err = unix.ENOSYS
		}
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func openat(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDir opens dir without following a symbolic link in any component. For
// reading an O_PATH descriptor is enough (no read permission needed); for
// writing it must be a real descriptor, to fsync and rename in it.
func openDir(dir string, write bool) (int, error) {
	flags := unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_PATH
	if write {
		flags = unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_RDONLY
	}
	fd, err := openat2(unix.AT_FDCWD, dir, flags, resolveNoLinks)
	if err != unix.ENOSYS {
		return fd, err
	}
	fd, err = walkNoSymlinks(dir)
	if err != nil || !write {
		return fd, err
	}
	defer unix.Close(fd)
	return openat(fd, ".", flags)
}

// walkNoSymlinks is the fallback for kernels without openat2: it opens dir
// one component at a time with O_PATH|O_NOFOLLOW and refuses any component
// that is a symbolic link.
func walkNoSymlinks(dir string) (int, error) {
	start := "."
	if strings.HasPrefix(dir, "/") {
		start = "/"
	}
	fd, err := openat(unix.AT_FDCWD, start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return -1, err
	}
	for _, name := range strings.Split(dir, "/") {
		if name == "" || name == "." {
			continue
		}
		next, err := openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
		case unix.S_IFLNK:
			unix.Close(next)
			return -1, unix.ELOOP
		default:
			unix.Close(next)
			return -1, unix.ENOTDIR
		}
		fd = next
	}
	return fd, nil
}

// openFileAt opens the file name in the directory open at dirfd for reading,
// refusing symbolic links and never blocking (a FIFO opens at once).
func openFileAt(dirfd int, name string) (int, error) {
	fd, err := openat2(dirfd, name, fileOpenFlags, resolveNoLinks|unix.RESOLVE_BENEATH)
	if err != unix.ENOSYS {
		return fd, err
	}
	return openat(dirfd, name, fileOpenFlags)
}

func openParent(fd int) (int, error) {
	return openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
}

// fdPath names the directory open at fd for messages, preferring the kernel's
// view (/proc/self/fd) and falling back to the lexical path.
func fdPath(fd int, fallback string) string {
	if p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil && strings.HasPrefix(p, "/") {
		return p
	}
	return fallback
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h): a little-endian u32
// version 2, then entries of {u16 tag, u16 perm, u32 id}.
const (
	aclXattr     = "system.posix_acl_access"
	aclVersion   = 2
	aclUserObj   = 0x01
	aclUser      = 0x02
	aclGroupObj  = 0x04
	aclGroup     = 0x08
	aclMask      = 0x10
	aclOther     = 0x20
	aclRead      = 0x04
	aclEntrySize = 8
)

// systemdACLGrantsOnly reports whether the file open at fd carries a POSIX
// ACL that gives read access to uid and to no one else besides the owner:
// what systemd writes for LoadCredential= in a unit with User= when the
// credentials file system supports ACLs (a root-owned 0400 file, shown as
// 0440 because the group bits become the ACL mask).
func systemdACLGrantsOnly(fd int, uid uint32) bool {
	buf := make([]byte, 4+16*aclEntrySize)
	n, err := unix.Fgetxattr(fd, aclXattr, buf)
	if err != nil || n < 4 || (n-4)%aclEntrySize != 0 || binary.LittleEndian.Uint32(buf) != aclVersion {
		return false
	}
	granted := false
	for e := buf[4:n]; len(e) > 0; e = e[aclEntrySize:] {
		tag, perm, id := binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:])
		switch tag {
		case aclUserObj:
		case aclUser:
			if id != uid || perm&^aclRead != 0 {
				return false
			}
			granted = granted || perm == aclRead
		case aclMask:
			if perm&^aclRead != 0 {
				return false
			}
		case aclGroupObj, aclGroup, aclOther:
			if perm != 0 {
				return false
			}
		default:
			return false
		}
	}
	return granted
}

// renameNoReplace publishes from as to in the directory open at dirfd,
// failing with EEXIST if to exists, even if it appears concurrently.
func renameNoReplace(dirfd int, from, to string) error {
	if !renameat2Disabled {
		err := unix.Renameat2(dirfd, from, dirfd, to, unix.RENAME_NOREPLACE)
		if err != unix.EINVAL && err != unix.ENOSYS {
			return err
		}
	}
	return linkUnlink(dirfd, from, to)
}
