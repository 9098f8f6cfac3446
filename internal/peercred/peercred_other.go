// SPDX-License-Identifier: Apache-2.0

//go:build !linux && !darwin

package peercred

import (
	"errors"
	"fmt"
)

func ofFD(int) (Peer, error) {
	return Peer{}, fmt.Errorf("peer credentials: %w", errors.ErrUnsupported)
}
