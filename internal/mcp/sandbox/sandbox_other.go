// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
)

// HelperArg is the first argument that makes a binary the sandbox helper.
const HelperArg = "__ov-sandbox-exec"

// ErrUnavailable is matched when this machine cannot isolate commands.
var ErrUnavailable = errors.New("commands cannot be isolated from ov's secrets on this system (Linux only)")

// Paths returns nothing: there is no sandbox here.
func Paths(func(string) string, ...string) []string { return nil }

// Command returns nil: there is no sandbox here.
func Command(context.Context, string, []string, string, []string) *exec.Cmd { return nil }

// HelperMain fails: there is no sandbox here.
func HelperMain([]string) int { return 125 }

// ReadStatus reports nothing: there is no sandbox here.
func ReadStatus([]byte) (int, syscall.Signal, string, bool) { return 0, 0, "", false }
