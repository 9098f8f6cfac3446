// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/opaquevault/opaquevault/internal/childenv"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// The child's environment and program are internal/childenv's: the same rules as `ov mcp serve`'s
// commands. Here they only gain env(1)'s exit codes.

func systemdEnv(environ []string) []string { return childenv.SystemdOnly(environ) }

func checkEnvValues(values map[string]string) error { return childenv.CheckValues(values) }

// resolveProgram finds argv0 as execvp would, using ov's own PATH (never a PATH from the secrets),
// and maps failures to env(1)'s exit codes: 127 not found, 126 cannot be executed.
func resolveProgram(argv0 string) (string, error) {
	path, err := childenv.ResolveProgram(argv0, "")
	var pe *childenv.ProgramError
	if errors.As(err, &pe) && pe.NotFound {
		return "", withCode(ExitRunNotFound, err)
	} else if err != nil {
		return "", withCode(ExitRunNotExec, err)
	}
	return path, nil
}

// execProgram replaces the ov process with the program (execve): same PID, the program's own signals,
// exit status and NOTIFY_SOCKET. It returns only on failure.
func execProgram(path string, argv, env []string) error {
	_ = secmem.RestoreCoreLimit()
	err := syscall.Exec(path, argv, env)
	code := ExitRunNotExec
	if errors.Is(err, syscall.ENOENT) {
		code = ExitRunNotFound
	}
	return withCode(code, fmt.Errorf("run %q: %w", argv[0], err))
}
