// SPDX-License-Identifier: Apache-2.0

package childenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// ProgramError says why a program cannot be started. NotFound tells env(1)'s 127 (not found) from
// 126 (found, cannot be executed); `ov run` exits with those codes.
type ProgramError struct {
	Name     string // argv[0] as given
	Reason   string // "program not found in PATH", "no such file", "not executable", …
	NotFound bool
}

func (e *ProgramError) Error() string {
	if e.Name == "" {
		return "run: " + e.Reason
	}
	return fmt.Sprintf("run %q: %s", e.Name, e.Reason)
}

// ResolveProgram finds argv0 as execvp would and returns its absolute path: a name without a slash
// in PATH (ov's own PATH, never one from the secrets), a relative path from dir ("" for the current
// directory). It checks that the file exists, is not a directory and has an execute bit, so that the
// caller can fail before it reads any secret. Errors are a [*ProgramError].
func ResolveProgram(argv0, dir string) (string, error) {
	if argv0 == "" {
		return "", &ProgramError{Reason: "empty program name", NotFound: true}
	}
	path := argv0
	if !strings.Contains(argv0, "/") {
		p, err := exec.LookPath(argv0)
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return "", &ProgramError{Name: argv0, Reason: "program not found in PATH", NotFound: true}
			}
			return "", &ProgramError{Name: argv0, Reason: unwrapPath(err).Error()}
		}
		path = p
	} else if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &ProgramError{Name: argv0, Reason: "no such file", NotFound: true}
	case err != nil:
		return "", &ProgramError{Name: argv0, Reason: unwrapPath(err).Error()}
	case fi.IsDir():
		return "", &ProgramError{Name: argv0, Reason: "is a directory"}
	case fi.Mode()&0o111 == 0:
		return "", &ProgramError{Name: argv0, Reason: "not executable"}
	}
	if !filepath.IsAbs(path) {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	return path, nil
}

// unwrapPath drops the *exec.Error and *fs.PathError wrappers, which repeat the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// SystemdVariables are passed to the program even when the caller's environment is not
// (`ov run --no-inherit`): systemd's protocol with the service (readiness, socket activation,
// watchdog, credentials, its directories) must reach it.
var SystemdVariables = []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
	"WATCHDOG_PID", "CREDENTIALS_DIRECTORY", "INVOCATION_ID", "JOURNAL_STREAM", "RUNTIME_DIRECTORY",
	"STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY", "CONFIGURATION_DIRECTORY"}

// SystemdOnly returns the entries of environ that [SystemdVariables] names, in environ's order.
func SystemdOnly(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, k := range SystemdVariables {
			if name == k {
				out = append(out, kv)
			}
		}
	}
	return out
}

// CheckValues refuses values execve cannot pass (a NUL byte), naming the first such secret by name,
// never its value.
func CheckValues(values map[string]string) error {
	var bad []string
	for name, v := range values {
		if strings.IndexByte(v, 0) >= 0 {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("run: the value of %s contains a NUL byte, which no environment variable can hold", strings.Join(bad, ", "))
}
