// SPDX-License-Identifier: Apache-2.0

package credentials

import "errors"

// Sentinel errors. Functions return them wrapped, in a [*FileError] for the
// file checks; test with errors.Is.
var (
	// ErrBadMode: the file's permission bits are not an allowed mode (0600
	// or 0400 by default); in particular any group or world bit.
	ErrBadMode = errors.New("file mode not allowed")
	// ErrSymlink: the path or one of its directories is a symbolic link. Such
	// errors also match syscall.ELOOP.
	ErrSymlink = errors.New("symbolic link refused")
	// ErrHardLinked: the file has more than one name (st_nlink != 1).
	ErrHardLinked = errors.New("file has more than one hard link")
	// ErrWrongOwner: the file is not owned by the expected uid.
	ErrWrongOwner = errors.New("file has the wrong owner")
	// ErrNotRegular: the path is a FIFO, directory, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrWrongSize: the file does not have the required size, is empty, or is
	// larger than allowed.
	ErrWrongSize = errors.New("file has the wrong size")
	// ErrUnsafeDir: a directory on the way to the file can be written by
	// someone other than root and the expected owner, or is owned by someone
	// else.
	ErrUnsafeDir = errors.New("unsafe directory")
	// ErrExists: the target of a write exists and [WriteOptions.Force] is not
	// set. Such errors also match fs.ErrExist.
	ErrExists = errors.New("file already exists")
	// ErrNotUnderSystemd: $CREDENTIALS_DIRECTORY is not set.
	ErrNotUnderSystemd = errors.New("$CREDENTIALS_DIRECTORY is not set (not started by systemd with LoadCredential= or LoadCredentialEncrypted=)")
	// ErrInvalidName: a credential name is empty, ".", "..", too long, or
	// contains "/" or NUL.
	ErrInvalidName = errors.New("invalid credential name")
)

// FileError describes a refused or failed file operation. Its message has the
// form "Op Path: Detail", e.g.
//
//	read machine key /etc/ov/myapp.key: mode 0644 is too open (must be 0600 or 0400)
//
// It never contains file contents.
type FileError struct {
	Op     string // what was being done, e.g. "read machine key"
	Path   string // the path as given by the caller
	Detail string // what is wrong, naming the value found and the one wanted
	Err    error  // one of the package's sentinels, or nil
	Cause  error  // the underlying system error (e.g. syscall.ELOOP), or nil
}

func (e *FileError) Error() string { return e.Op + " " + e.Path + ": " + e.Detail }

// Unwrap returns Err and Cause, so errors.Is matches both the sentinel and
// the system error (fs.ErrNotExist, fs.ErrPermission, syscall.ELOOP, …).
func (e *FileError) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}
