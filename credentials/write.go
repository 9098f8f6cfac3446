// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package credentials

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// WriteOptions controls [WriteKeyFile]. The zero value creates a new file
// owned by the caller and refuses to replace an existing one.
type WriteOptions struct {
	// Force replaces an existing file (atomically; the result is still 0600
	// and owned as requested, whatever the old file's mode was).
	Force bool
	// What names the file in errors ("write What PATH: …"); default
	// "machine key".
	What string

	uid, gid int
	ownerSet bool
}

// WithOwner returns o with the new file's owner set to uid and gid (changing
// the owner needs root). Without it the file is owned by the effective uid
// and gid of the process.
func (o WriteOptions) WithOwner(uid, gid int) WriteOptions {
	o.uid, o.gid, o.ownerSet = uid, gid, true
	return o
}

// Tests set testHookBeforePublish to act between writing the temporary file
// and publishing it.
var testHookBeforePublish func()

// WriteKeyFile writes data to path as a 0600 file (whatever the umask)
// owned by the caller or by opts' owner. The directory is opened without
// following symbolic links, must pass the checks ReadKeyFile applies to
// directories (for root, the caller and the new owner), and is fsynced after
// the file is published. Without opts.Force an existing file is never
// replaced, even when another process creates it concurrently. A temporary
// file is never left behind.
//
// Errors are [*FileError] values; they may match [ErrExists] (and
// fs.ErrExist), [ErrSymlink], [ErrUnsafeDir], or a system error such as
// fs.ErrPermission.
func WriteKeyFile(path string, data []byte, opts WriteOptions) error {
	if opts.What == "" {
		opts.What = "machine key"
	}
	return writeFile(path, data, 0o600, opts)
}

// WriteFileAtomic atomically writes data to path with exactly the permission
// bits mode (whatever the umask or the mode of the file it replaces), in a
// directory checked as for [WriteKeyFile], and fsyncs the directory. It
// replaces an existing file; the CLI writes ~/.config/ov/config with it. It
// may return the same errors as WriteKeyFile except ErrExists.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	return writeFile(path, data, mode.Perm(), WriteOptions{Force: true, What: "file"})
}

func writeFile(path string, data []byte, perm fs.FileMode, o WriteOptions) (err error) {
	op := "write " + o.What
	fail := func(sentinel, cause error, format string, args ...any) error {
		return &FileError{Op: op, Path: path, Detail: fmt.Sprintf(format, args...), Err: sentinel, Cause: cause}
	}
	dir, base, ok := splitPath(path)
	if !ok {
		return fail(nil, nil, "path does not name a file")
	}
	euid := os.Geteuid()
	uid, gid := euid, os.Getegid()
	if o.ownerSet {
		uid, gid = o.uid, o.gid
	}

	dirfd, err := openDir(dir, true)
	if err != nil {
		return openError(op, path, dir, true, err)
	}
	defer unix.Close(dirfd)
	if e := checkDirs(dirfd, dir, uint32(euid), uint32(uid)); e != nil {
		e.Op, e.Path = op, path
		return e
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fail(nil, err, "open directory: %v", err)
	}
	defer root.Close()
	if err := sameDir(root, dirfd); err != nil {
		return fail(ErrUnsafeDir, err, "directory %s changed while being opened", dir)
	}
	exists := func() error {
		return &FileError{Op: op, Path: path, Detail: "file already exists (use --force to replace it)", Err: ErrExists, Cause: fs.ErrExist}
	}
	if !o.Force {
		if _, err := root.Lstat(base); err == nil {
			return exists()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fail(nil, err, "%v", err)
		}
	}

	// The temporary file is created in the same directory with O_EXCL
	// (through the Root, so never through a symlink) and chmodded to perm.
	pf, err := renameio.NewPendingFile(base, renameio.WithRoot(root), renameio.WithStaticPermissions(perm))
	if err != nil {
		return fail(nil, err, "create temporary file: %v", err)
	}
	published := false
	defer func() {
		if !published {
			_ = pf.Cleanup()
		}
	}()
	// A file this process creates is already its own; only an explicit owner (root writing a key
	// for a service's user) needs a chown. Chowning to our own ids anyway fails where our group is
	// not mapped, as in a unit with PrivateUsers=yes: the agent's rollback state.
	if o.ownerSet {
		if err := pf.Chown(uid, gid); err != nil {
			return fail(nil, err, "set owner to uid %d gid %d: %v", uid, gid, unwrapPath(err))
		}
	}
	if _, err := pf.Write(data); err != nil {
		return fail(nil, err, "write temporary file: %v", unwrapPath(err))
	}
	if testHookBeforePublish != nil {
		testHookBeforePublish()
	}
	if o.Force {
		if err := pf.CloseAtomicallyReplace(); err != nil {
			return fail(nil, err, "replace: %v", unwrapPath(err))
		}
	} else {
		if err := pf.Sync(); err != nil {
			return fail(nil, err, "fsync: %v", unwrapPath(err))
		}
		if err := pf.File.Close(); err != nil {
			return fail(nil, err, "close: %v", unwrapPath(err))
		}
		if err := renameNoReplace(dirfd, filepath.Base(pf.Name()), base); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return exists()
			}
			return fail(nil, err, "publish: %v", err)
		}
	}
	published = true
	if err := unix.Fsync(dirfd); err != nil {
		return fail(nil, err, "fsync directory %s: %v", dir, err)
	}
	return nil
}

// sameDir checks that root and dirfd are the same directory: the Root is
// what renameio works in, dirfd is what was opened without symlinks and
// checked.
func sameDir(root *os.Root, dirfd int) error {
	f, err := root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(dirfd, &a); err != nil {
		return err
	}
	if err := unix.Fstat(int(f.Fd()), &b); err != nil {
		return err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return errors.New("directory replaced")
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// linkUnlink is the publication fallback where no-replace rename is not
// supported: link fails if the target exists, then the temporary name goes.
func linkUnlink(dirfd int, from, to string) error {
	if err := unix.Linkat(dirfd, from, dirfd, to, 0); err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, from, 0)
}
