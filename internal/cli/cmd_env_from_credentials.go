// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/childenv"
	ovnames "github.com/opaquevault/opaquevault/internal/names"
)

// envFromCredentials maps the credentials systemd passed to variables and replaces itself with
// the program.
func (a *App) envFromCredentials(ctx context.Context, args []string) error {
	fs := a.flags()
	fs.SetInterspersed(false)
	argv, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return usageErr("env-from-credentials: no program given", "usage: ov "+a.cmd.usage)
	}
	path, err := resolveProgram(argv[0])
	if err != nil {
		return err
	}
	values, err := a.credentialValues()
	if err != nil {
		return withCode(ExitRunFailed, err)
	}
	if err := checkEnvValues(values); err != nil {
		return withCode(ExitRunFailed, err)
	}
	a.log.WithField("program", path).WithField("count", len(values)).Debug("exec")
	return execProgram(path, argv, childenv.Build(os.Environ(), values))
}

// credentialValues reads every credential of $CREDENTIALS_DIRECTORY whose name is a variable name.
func (a *App) credentialValues() (map[string]string, error) {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return nil, fmt.Errorf("env-from-credentials: $CREDENTIALS_DIRECTORY is not set: run it from a unit with LoadCredential= (ExecStart=)")
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("env-from-credentials: $CREDENTIALS_DIRECTORY %q is not an absolute path", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("env-from-credentials: read %s: %w", dir, unwrapPathErr(err))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	values := map[string]string{}
	for _, n := range names {
		if !ovnames.Portable(n) { // a name a shell and systemd accept as a variable (internal/names)
			a.warnf("credential %q skipped: not a valid variable name (letters, digits and _, not starting with a digit)", n)
			continue
		}
		v, err := loadCredentialValue(dir, n)
		if err != nil {
			return nil, fmt.Errorf("env-from-credentials: %w", err)
		}
		values[n] = v
	}
	return values, nil
}

// loadCredentialValue reads one credential with the checks of package credentials. An empty file
// (an empty value) is taken when it is owned by this uid or root, as systemd leaves it.
func loadCredentialValue(dir, name string) (string, error) {
	buf, err := credentials.Load(name)
	if err == nil {
		defer buf.Destroy()
		return string(buf.Bytes()), nil
	}
	if errors.Is(err, credentials.ErrWrongSize) {
		fi, serr := os.Lstat(filepath.Join(dir, name))
		if serr == nil && fi.Mode().IsRegular() && fi.Size() == 0 && fi.Mode().Perm()&0o022 == 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid == 0 || int(st.Uid) == os.Geteuid()) {
				return "", nil
			}
		}
	}
	return "", err
}
