// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package credentials

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opaquevault/opaquevault/internal/secmem"
)

// Load reads the credential name that systemd passed to this unit with
// LoadCredential= or LoadCredentialEncrypted=, from $CREDENTIALS_DIRECTORY,
// with the checks of [ReadSecretFile]: the file must be owned by the running
// uid with mode 0400 or 0600. When the unit has User=, systemd may instead
// leave the file owned by root with a POSIX ACL that grants read access to
// the service user only; that is accepted too. The directories above may be
// owned by root. The caller must Destroy the result.
//
// It returns an error matching [ErrInvalidName] for a bad name,
// [ErrNotUnderSystemd] when $CREDENTIALS_DIRECTORY is unset, fs.ErrNotExist
// ("credential NAME was not passed to this unit") when there is no such
// credential, and otherwise the errors of ReadSecretFile.
func Load(name string) (*secmem.Buf, error) {
	return LoadWith(name, ReadOptions{})
}

// LoadWith is [Load] with size and mode constraints from opts, e.g.
// ReadOptions{Size: MachineKeySize} for `ov run --machine-key-credential`.
// The owner is always the running uid.
func LoadWith(name string, opts ReadOptions) (*secmem.Buf, error) {
	if !validName(name) {
		return nil, fmt.Errorf("load credential %q: %w", name, ErrInvalidName)
	}
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return nil, fmt.Errorf("load credential %q: %w", name, ErrNotUnderSystemd)
	}
	opts.What = "credential"
	opts.uidSet = false
	opts.systemd = true
	buf, err := readSecret(filepath.Join(dir, name), opts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("credential %q was not passed to this unit: %w", name, err)
	}
	return buf, err
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 && !strings.ContainsAny(name, "/\x00")
}
