// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"io/fs"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/vault"
)

func isWrongPassword(err error) bool { return errors.Is(err, vault.ErrWrongPassword) }

// isPermission reports file-permission refusals: they are "denied" (exit 4).
func isPermission(err error) bool {
	for _, s := range []error{credentials.ErrBadMode, credentials.ErrSymlink, credentials.ErrHardLinked,
		credentials.ErrWrongOwner, credentials.ErrUnsafeDir, credentials.ErrNotRegular, fs.ErrPermission} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
