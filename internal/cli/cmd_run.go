// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/opaquevault/opaquevault/internal/remote"
)

// readForRun reads the env with a machine key when one is given (or passed by systemd), else by
// unlocking the account with the password.
func (a *App) readForRun(ctx context.Context, t target, mf machineFlags, u unlockFlags) (*remote.Env, error) {
	mk, err := a.machineKey(mf)
	if err != nil {
		return nil, err
	}
	if mk != nil {
		if u.passwordFile != "" {
			a.warnf("--password-file is not used with a machine key")
		}
		return a.readWithMachineKey(ctx, t, mf, mk)
	}
	if mf.offline {
		return nil, usageErr("--offline needs a machine key (--machine-key or --machine-key-credential)")
	}
	s, err := a.unlock(ctx, u)
	if err != nil {
		return nil, err
	}
	defer s.close()
	env, err := s.vault.Read(ctx, t.app, t.env)
	if err != nil {
		return nil, envError(err, t.app, t.env)
	}
	return env, nil
}

func init() {
	register(&command{
		path:    "run",
		summary: "run a program with the secrets of an (app, env) in its environment",
		usage:   "run --app APP --env ENV [--secrets NAME,NAME] [--no-inherit] -- PROGRAM [ARGS...]",
		examples: []string{
			"ov run --app myapp --env production -- /opt/myapp/bin/server",
			"ov run --app myapp --env production --secrets DATABASE_URL,STRIPE_SECRET_KEY -- ./server --port 8080",
			"ov run --app myapp --env production --machine-key /etc/ov/myapp.key -- /opt/myapp/bin/server",
			"ov run --app myapp --env production --machine-key-credential ov-myapp -- /opt/myapp/bin/server   # LoadCredential(Encrypted)=ov-myapp",
			"ov run --app myapp --env production --no-inherit -- /usr/bin/env",
		},
		run: (*App).run,
	})
}

// run resolves the program, unlocks, fetches and verifies the secrets, and replaces itself with the
// program through execve: the PID, signals, exit status and NOTIFY_SOCKET are the program's own.
func (a *App) run(ctx context.Context, args []string) error {
	fs := a.flags()
	fs.SetInterspersed(false)
	var t target
	t.add(fs)
	only := fs.String("secrets", "", "comma-separated names to pass (default: every secret of the env); a missing name is an error")
	noInherit := fs.Bool("no-inherit", false, "start the program with only the secrets in its environment, not ov's own")
	var mf machineFlags
	mf.add(fs)
	var u unlockFlags
	u.add(fs)
	argv, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := a.need(t); err != nil {
		return err
	}
	if len(argv) == 0 {
		return usageErr("run: no program given", "usage: ov "+a.cmd.usage)
	}
	var names []string
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if err := checkVarName(n); err != nil {
				return usageErr("--secrets: " + err.Error())
			}
			names = append(names, n)
		}
		names = dedupe(names)
		if len(names) == 0 {
			return usageErr("--secrets names no secret")
		}
	}
	path, err := resolveProgram(argv[0])
	if err != nil {
		return err
	}
	env, err := a.readForRun(ctx, t, mf, u)
	if err != nil {
		return err
	}
	values := map[string]string{}
	if names == nil {
		for _, sec := range env.Secrets {
			values[sec.Name] = string(sec.Value)
		}
	} else {
		var missing []string
		for _, n := range names {
			sec, ok := env.Lookup(n)
			if !ok {
				missing = append(missing, n)
				continue
			}
			values[n] = string(sec.Value)
		}
		if len(missing) > 0 {
			env.Wipe()
			return withCode(ExitNotFound, fmt.Errorf("run: %s/%s has no secret %s", t.app, t.env, strings.Join(missing, ", ")),
				fmt.Sprintf("`ov secret list --app %s --env %s` shows the names", t.app, t.env))
		}
	}
	env.Wipe()
	var base []string
	if !*noInherit {
		base = os.Environ()
	}
	a.log.WithField("program", path).WithField("count", len(values)).Debug("exec")
	return execProgram(path, argv, buildEnv(base, values))
}
