// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package credentials

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/internal/secmem"
)

const (
	// MachineKeySize is the size of a machine key file: exactly the 32 bytes
	// of the key, nothing else.
	MachineKeySize = 32
	// DefaultMaxSize bounds files read without a fixed size.
	DefaultMaxSize = 1 << 20
)

// ReadOptions says what a file must look like. The zero value is usable.
type ReadOptions struct {
	// Size is the exact size the file must have. Zero means MachineKeySize
	// for ReadKeyFile, and "any size from 1 to MaxSize" otherwise.
	Size int
	// MaxSize bounds the size when Size is zero (default DefaultMaxSize).
	MaxSize int
	// Modes lists the permission bits accepted; nil means 0600 and 0400. A
	// mode with any group or world bit is always refused.
	Modes []fs.FileMode
	// What names the file in errors ("read What PATH: …"); the default is
	// "machine key" for ReadKeyFile and "secret file" for ReadSecretFile.
	What string

	uid    int
	uidSet bool
	// systemd accepts what systemd's credential setup produces for a service
	// with User=: a root-owned 0400 file whose POSIX ACL grants read access to
	// the running uid and nobody else.
	systemd bool
}

// WithOwner returns o with the expected owner set to uid. Without it, the
// file must be owned by the effective uid of the process.
func (o ReadOptions) WithOwner(uid int) ReadOptions {
	o.uid, o.uidSet = uid, true
	return o
}

// ReadKeyFile reads a key file into locked memory after checking, on the
// open descriptor, that it is a regular file of exactly opts.Size bytes
// (default [MachineKeySize]) owned by the expected uid with mode 0600 or 0400
// and one link, and that no directory above it is writable by others (see the
// package documentation). The caller must Destroy the result.
//
// Errors are [*FileError] values matching [ErrBadMode], [ErrSymlink] (and
// syscall.ELOOP), [ErrHardLinked], [ErrWrongOwner], [ErrNotRegular],
// [ErrWrongSize], [ErrUnsafeDir], or a system error such as fs.ErrNotExist or
// fs.ErrPermission.
func ReadKeyFile(path string, opts ReadOptions) (*secmem.Buf, error) {
	if opts.Size == 0 {
		opts.Size = MachineKeySize
	}
	if opts.What == "" {
		opts.What = "machine key"
	}
	return readSecret(path, opts)
}

// ReadSecretFile is [ReadKeyFile] for files without a fixed size, such as
// --password-file or the client config: the file must be non-empty and at
// most opts.MaxSize bytes (default [DefaultMaxSize]) unless opts.Size is set.
// It may return the same errors as ReadKeyFile.
func ReadSecretFile(path string, opts ReadOptions) (*secmem.Buf, error) {
	if opts.What == "" {
		opts.What = "secret file"
	}
	return readSecret(path, opts)
}

// ReadPrivateFile is [ReadSecretFile] for files that must be private but hold nothing secret in
// the clear (the offline cache's ciphertext, rollback floors): the same checks, into ordinary
// memory, which spares the locked mapping of a secret. The default What is "file".
func ReadPrivateFile(path string, opts ReadOptions) ([]byte, error) {
	if opts.What == "" {
		opts.What = "file"
	}
	var b []byte
	err := readChecked(path, opts, func(n int) ([]byte, error) {
		b = make([]byte, n)
		return b, nil
	})
	return b, err
}

func readSecret(path string, o ReadOptions) (*secmem.Buf, error) {
	var buf *secmem.Buf
	err := readChecked(path, o, func(n int) ([]byte, error) {
		var err error
		if buf, err = secmem.New(n); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	})
	if err != nil && buf != nil {
		buf.Destroy()
		buf = nil
	}
	return buf, err
}

// readChecked opens path, checks the file and the directories above it, and reads the whole file
// into the memory alloc returns for its size.
func readChecked(path string, o ReadOptions, alloc func(n int) ([]byte, error)) error {
	op := "read " + o.What
	fail := func(sentinel error, cause error, format string, args ...any) error {
		return &FileError{Op: op, Path: path, Detail: fmt.Sprintf(format, args...), Err: sentinel, Cause: cause}
	}
	dir, base, ok := splitPath(path)
	if !ok {
		return fail(nil, nil, "path does not name a file")
	}
	uid := os.Geteuid()
	if o.uidSet {
		uid = o.uid
	}

	dirfd, err := openDir(dir, false)
	if err != nil {
		return openError(op, path, dir, true, err)
	}
	defer unix.Close(dirfd)
	var fd int
	var st unix.Stat_t
	// A file that has no name by the time it is checked (0 links) was replaced by an atomic
	// rename between the open and the fstat, as another ov process does with its state files:
	// open the new one. Only so often (pausing from the fourth try on); a file that keeps
	// vanishing is an error below.
	for try := 0; ; try++ {
		if try > 3 {
			time.Sleep(time.Millisecond)
		}
		if fd, err = openFileAt(dirfd, base); err != nil {
			return openError(op, path, dir, false, err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return fail(nil, err, "fstat: %v", err)
		}
		if st.Nlink != 0 || try == 20 {
			break
		}
		unix.Close(fd)
	}
	defer unix.Close(fd)
	if e := checkFile(fd, &st, uint32(uid), o); e != nil {
		e.Op, e.Path = op, path
		return e
	}
	if e := checkDirs(dirfd, dir, uint32(uid)); e != nil {
		e.Op, e.Path = op, path
		return e
	}

	b, err := alloc(int(st.Size))
	if err != nil {
		return fail(nil, err, "%v", err)
	}
	if err := readFull(fd, b); err != nil {
		if errors.Is(err, errShort) {
			return fail(ErrWrongSize, nil, "changed size while being read")
		}
		return fail(nil, err, "read: %v", err)
	}
	// The size was checked on the descriptor; a file that grew since is refused.
	var extra [1]byte
	n, err := readRetry(fd, extra[:])
	extra[0] = 0
	if n != 0 || err != nil {
		return fail(ErrWrongSize, err, "changed size while being read")
	}
	return nil
}

// splitPath returns the directory and the last element of path, refusing
// paths that do not end in a name.
func splitPath(path string) (dir, base string, ok bool) {
	if path == "" || strings.IndexByte(path, 0) >= 0 {
		return "", "", false
	}
	clean := filepath.Clean(path)
	dir, base = filepath.Dir(clean), filepath.Base(clean)
	if base == "/" || base == "." || base == ".." {
		return "", "", false
	}
	return dir, base, true
}

var errShort = errors.New("short read")

func readRetry(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

func readFull(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := readRetry(fd, p)
		if err != nil {
			return err
		}
		if n == 0 {
			return errShort
		}
		p = p[n:]
	}
	return nil
}

// checkFile applies the descriptor checks in a fixed order: type, owner,
// mode, link count, size. The returned error lacks Op and Path.
func checkFile(fd int, st *unix.Stat_t, uid uint32, o ReadOptions) *FileError {
	mode := uint32(st.Mode)
	if t := mode & unix.S_IFMT; t != unix.S_IFREG {
		return &FileError{Err: ErrNotRegular, Detail: "is " + typeName(t) + ", not a regular file"}
	}
	aclOK := false
	if st.Uid != uid {
		if !(o.systemd && st.Uid == 0 && systemdACLGrantsOnly(fd, uid)) {
			return &FileError{Err: ErrWrongOwner, Detail: fmt.Sprintf("is owned by %s, want %s", uidName(st.Uid), uidName(uid))}
		}
		aclOK = true
	}
	if e := checkMode(mode&0o7777, o.Modes, aclOK); e != nil {
		return e
	}
	if st.Nlink != 1 {
		return &FileError{Err: ErrHardLinked, Detail: fmt.Sprintf("has %d hard links (must have exactly 1; another name for the same file can be read or replaced elsewhere)", st.Nlink)}
	}
	size := st.Size
	switch {
	case o.Size > 0 && size != int64(o.Size):
		return &FileError{Err: ErrWrongSize, Detail: fmt.Sprintf("is %d bytes, want %d", size, o.Size)}
	case o.Size > 0:
	case size == 0:
		return &FileError{Err: ErrWrongSize, Detail: "is empty"}
	case size > int64(cmp0(o.MaxSize, DefaultMaxSize)):
		return &FileError{Err: ErrWrongSize, Detail: fmt.Sprintf("is %d bytes, want at most %d", size, cmp0(o.MaxSize, DefaultMaxSize))}
	}
	return nil
}

func cmp0(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

var defaultModes = []fs.FileMode{0o600, 0o400}

// checkMode refuses any mode outside the allowed list, and in particular any
// group or world bit. With aclOK (a root-owned systemd credential whose ACL
// was verified) the group bits show the ACL mask, which may be r--.
func checkMode(perm uint32, allowed []fs.FileMode, aclOK bool) *FileError {
	if allowed == nil {
		allowed = defaultModes
	}
	var want []string
	for _, m := range allowed {
		want = append(want, fmt.Sprintf("%04o", uint32(m.Perm())))
	}
	must := strings.Join(want, " or ")
	ownerPart, open := perm, perm&0o077
	if aclOK {
		ownerPart, open = perm&^0o070, perm&0o037
	}
	if open != 0 {
		return &FileError{Err: ErrBadMode, Detail: fmt.Sprintf("mode %04o is too open (must be %s)", perm, must)}
	}
	if !slices.Contains(allowed, fs.FileMode(ownerPart)) {
		return &FileError{Err: ErrBadMode, Detail: fmt.Sprintf("mode %04o is not allowed (must be %s)", perm, must)}
	}
	return nil
}

func typeName(t uint32) string {
	switch t {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO (named pipe)"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("of type %#o", t)
}

// uidName renders a uid for messages: "uid 998 (myapp)".
func uidName(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil && u.Username != "" {
		s += " (" + u.Username + ")"
	}
	return s
}

// checkDirs walks from the directory open at dirfd up to the root through
// "..", so it checks the directories the file was actually opened in, and
// refuses any that is group- or world-writable or owned by someone other than
// root and the given uids. name is the directory's path for messages.
func checkDirs(dirfd int, name string, uids ...uint32) *FileError {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	fd := dirfd
	defer func() {
		if fd != dirfd {
			unix.Close(fd)
		}
	}()
	for range 4096 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return &FileError{Cause: err, Detail: fmt.Sprintf("fstat directory %s: %v", name, err)}
		}
		mode := uint32(st.Mode)
		where := func() string { return fdPath(fd, name) }
		switch {
		case mode&unix.S_IFMT != unix.S_IFDIR:
			return &FileError{Err: ErrUnsafeDir, Detail: fmt.Sprintf("%s is not a directory", where())}
		case mode&0o002 != 0:
			return &FileError{Err: ErrUnsafeDir, Detail: fmt.Sprintf("directory %s is world-writable (mode %04o); keep secrets in a directory only root and the owner can write", where(), mode&0o7777)}
		case mode&0o020 != 0:
			return &FileError{Err: ErrUnsafeDir, Detail: fmt.Sprintf("directory %s is group-writable (mode %04o); keep secrets in a directory only root and the owner can write", where(), mode&0o7777)}
		case st.Uid != 0 && !slices.Contains(uids, st.Uid):
			var want []string
			for _, u := range uids {
				if u != 0 {
					want = append(want, uidName(u))
				}
			}
			return &FileError{Err: ErrUnsafeDir, Detail: fmt.Sprintf("directory %s is owned by %s, want root or %s", where(), uidName(st.Uid), strings.Join(slices.Compact(want), " or "))}
		}
		pfd, err := openParent(fd)
		if err != nil {
			return &FileError{Cause: err, Detail: fmt.Sprintf("open parent of directory %s: %v", where(), err)}
		}
		var pst unix.Stat_t
		if err := unix.Fstat(pfd, &pst); err != nil {
			unix.Close(pfd)
			return &FileError{Cause: err, Detail: fmt.Sprintf("fstat parent of directory %s: %v", where(), err)}
		}
		if pst.Dev == st.Dev && pst.Ino == st.Ino { // reached the root
			unix.Close(pfd)
			return nil
		}
		if fd != dirfd {
			unix.Close(fd)
		}
		fd, name = pfd, filepath.Dir(name)
	}
	return &FileError{Err: ErrUnsafeDir, Detail: "directory tree too deep"}
}

// openError turns an open failure into a FileError. dir is the directory
// part of the path; inDir says whether opening the directory failed.
func openError(op, path, dir string, inDir bool, err error) *FileError {
	e := &FileError{Op: op, Path: path, Cause: err}
	switch {
	case errors.Is(err, unix.ELOOP) && inDir:
		e.Err, e.Detail = ErrSymlink, fmt.Sprintf("directory %s is or goes through a symbolic link (refused; use the real path)", dir)
	case errors.Is(err, unix.ELOOP):
		e.Err, e.Detail = ErrSymlink, "is a symbolic link (refused; point at the real file)"
	case errors.Is(err, unix.ENXIO):
		e.Err, e.Detail = ErrNotRegular, "is a socket or a device without a driver, not a regular file"
	case errors.Is(err, unix.ENOENT) && inDir:
		e.Detail = fmt.Sprintf("directory %s does not exist", dir)
	case errors.Is(err, unix.ENOENT):
		e.Detail = "no such file"
	case errors.Is(err, unix.ENOTDIR):
		e.Detail = "a component of the path is not a directory"
	default:
		e.Detail = err.Error()
	}
	return e
}
