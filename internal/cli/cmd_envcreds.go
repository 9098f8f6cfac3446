// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/childenv"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/sdunit"
)

func init() {
	register(&command{
		path:    "env-from-credentials",
		summary: "run a program with the files of $CREDENTIALS_DIRECTORY (LoadCredential=) as environment variables",
		usage:   "env-from-credentials -- PROGRAM [ARGS...]",
		examples: []string{
			"ExecStart=/usr/bin/ov env-from-credentials -- /opt/myapp/bin/server   # with LoadCredential=DATABASE_URL:/run/ov/credentials.sock",
		},
		notes: "For programs that read only environment variables. Each file of $CREDENTIALS_DIRECTORY becomes a\n" +
			"variable of the same name (names that are not valid variable names are skipped with a warning), after the\n" +
			"checks of `ov run --machine-key-credential` (owned by this uid, or by root with an ACL for it; 0400 or 0600;\n" +
			"one link). No network and no key: systemd and the agent's credential provider did the work. Exit status:\n" +
			"the program's own once ov has replaced itself with it; before that 125, or 126/127 as env(1).",
		run: (*App).envFromCredentials,
	})
}

// envVarRE is a name a shell and systemd accept as a variable.
var envVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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
		if !envVarRE.MatchString(n) {
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

// writePolicy writes the credential provider's policy of unit (root-owned 0644 when run as root, in
// a 0755 directory), atomically.
func (a *App) writePolicy(root, unit string, plan *sdunit.Plan) error {
	pp := underRoot(root, sdunit.PolicyPath(unit))
	if err := os.MkdirAll(filepath.Dir(pp), 0o755); err != nil {
		return fmt.Errorf("cut over %s: %w", unit, err)
	}
	if fi, err := os.Lstat(filepath.Dir(pp)); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return withCode(ExitFailure, fmt.Errorf("cut over %s: %s must be a directory writable only by its owner (root)", unit, filepath.Dir(pp)),
			"sudo ov agent install ... creates it root:root 0755")
	}
	if err := credentials.WriteFileAtomic(pp, []byte(plan.Policy()), 0o644); err != nil {
		return fmt.Errorf("cut over %s: %w", unit, err)
	}
	fmt.Fprintf(a.io.Out, "✓ Wrote %s\n", pp)
	return nil
}

// credentialsWarnings says when the credential provider is not installed where the drop-in is.
func (a *App) credentialsWarnings(root string) {
	if _, err := os.Lstat(underRoot(root, "/etc/systemd/system/ov-agent-credentials.socket")); err != nil {
		a.warnf("%s has no ov-agent-credentials.socket: the unit cannot get its credentials until the system agent serves them", underRoot(root, "/etc/systemd/system"))
		a.hintf("run: sudo ov agent install --machine-key KEY --app APP --env ENV --user USER --enable (again: it adds the socket)")
	}
}

// readWithAgentKey reads app/env for `cutover --credentials --machine-key`: with the system agent's
// key, which is owned by ov-agent.service's User= (the unit's User= need not be the same).
func (a *App) readWithAgentKey(ctx context.Context, t target, root, keyFile string) (*remote.Env, error) {
	au, err := sdunit.Load(root, "ov-agent.service")
	if err != nil {
		return nil, withCode(ExitFailure, fmt.Errorf("read the system agent's unit: %w", err),
			"--credentials needs the system agent: sudo ov agent install --machine-key KEY --app APP --env ENV --user USER --enable")
	}
	asvc, err := au.Service()
	if err != nil {
		return nil, err
	}
	return a.readWithKeyOf(ctx, t, root, keyFile, asvc)
}
