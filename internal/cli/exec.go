// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opaquevault/opaquevault/internal/secmem"
)

// keptVariables are passed to the program even with --no-inherit: systemd's protocol with the
// service (readiness, socket activation, watchdog, credentials) must reach it.
var keptVariables = []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
	"WATCHDOG_PID", "CREDENTIALS_DIRECTORY", "INVOCATION_ID", "JOURNAL_STREAM", "RUNTIME_DIRECTORY",
	"STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY", "CONFIGURATION_DIRECTORY"}

// systemdEnv returns the variables of keptVariables that environ has.
func systemdEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, k := range keptVariables {
			if name == k {
				out = append(out, kv)
			}
		}
	}
	return out
}

// checkEnvValues refuses values execve cannot pass (a NUL byte), naming the secret, never the value.
func checkEnvValues(values map[string]string) error {
	for name, v := range values {
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("run: the value of %s contains a NUL byte, which no environment variable can hold", name)
		}
	}
	return nil
}

// resolveProgram finds argv0 as execvp would, using ov's own PATH (never a PATH from the secrets),
// and maps failures to env(1)'s exit codes.
func resolveProgram(argv0 string) (string, error) {
	if argv0 == "" {
		return "", withCode(ExitRunNotFound, errors.New("run: empty program name"))
	}
	path := argv0
	if !strings.Contains(argv0, "/") {
		p, err := exec.LookPath(argv0)
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return "", withCode(ExitRunNotFound, fmt.Errorf("run %q: program not found in PATH", argv0))
			}
			return "", withCode(ExitRunNotExec, fmt.Errorf("run %q: %v", argv0, err))
		}
		path = p
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", withCode(ExitRunNotFound, fmt.Errorf("run %q: no such file", argv0))
	case err != nil:
		return "", withCode(ExitRunNotExec, fmt.Errorf("run %q: %v", argv0, err))
	case fi.IsDir():
		return "", withCode(ExitRunNotExec, fmt.Errorf("run %q: is a directory", argv0))
	case fi.Mode()&0o111 == 0:
		return "", withCode(ExitRunNotExec, fmt.Errorf("run %q: not executable", argv0))
	}
	if !filepath.IsAbs(path) {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
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
