// SPDX-License-Identifier: Apache-2.0

// Package credentials reads and writes key material on disk: machine key
// files, secret files such as --password-file and the client config, and
// credentials that systemd passes in $CREDENTIALS_DIRECTORY
// (LoadCredential=, LoadCredentialEncrypted=).
//
// It never follows a symbolic link in any path component, never looks at a
// path before opening it (every check runs on the open descriptor, so there is
// no window between check and use), never reads a file that failed a check,
// never replaces an existing key file unless told to, and never puts key bytes
// in an error. Keys are read straight into locked memory
// ([github.com/opaquevault/opaquevault/internal/secmem.Buf]).
//
// # Reading
//
// [ReadKeyFile], [ReadSecretFile] and [Load] open the file with
// openat2(RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) and
// O_NOFOLLOW|O_NONBLOCK|O_NOCTTY (on kernels without openat2, a component-by-
// component walk that refuses symlinks), then require of the descriptor: a
// regular file, owned by the expected uid, mode 0600 or 0400, one hard link
// and the expected size. Then every directory from the file's up to / must be
// owned by root or the expected uid and must not be group- or world-writable
// (OpenSSH's StrictModes rule; /tmp is refused, sticky bit or not). Each
// violation is a [*FileError] naming the path and the problem, matching one
// of [ErrBadMode], [ErrSymlink], [ErrHardLinked], [ErrWrongOwner],
// [ErrNotRegular], [ErrWrongSize] or [ErrUnsafeDir] with errors.Is.
//
// # Writing
//
// [WriteKeyFile] and [WriteFileAtomic] check the target directory the same
// way, stage a 0600 temporary file in it (created with O_EXCL, chowned,
// written and fsynced), publish it with rename and fsync the directory.
// Without [WriteOptions.Force] an existing file is never replaced, even by a
// concurrent writer: publication uses renameat2(RENAME_NOREPLACE) and fails
// with [ErrExists].
package credentials
