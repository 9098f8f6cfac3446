// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package peercred

import (
	"errors"
	"fmt"
)

func processOfFD(int) (Process, error) {
	return Process{}, fmt.Errorf("SO_PEERPIDFD: %w", errors.ErrUnsupported)
}

func probePeerPIDFD() error {
	return fmt.Errorf("SO_PEERPIDFD: %w", errors.ErrUnsupported)
}
