// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/opaquevault/opaquevault/internal/childenv"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/sd"
)

// readForRun reads the env with a machine key when one is given (or passed by systemd), else by
// unlocking the account with the password.
func (a *App) readForRun(ctx context.Context, t target, mf machineFlags, u unlockFlags, names []string) (*remote.Env, error) {
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
	if u.passwordFile == "" {
		if env, ok, err := a.readViaAgent(ctx, t, names); ok || err != nil {
			return env, err
		}
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

// readViaAgent reads the secrets from a running, unlocked agent that serves t (ok false: there is
// none, and the caller falls back to the password). A rendezvous file that fails its checks is an
// error, never a silent fall-back. It asks in one request (RUN); an agent older than RUN is asked
// with STATUS, LIST and GET.
func (a *App) readViaAgent(ctx context.Context, t target, names []string) (*remote.Env, bool, error) {
	ep, err := localapi.Discover()
	if err != nil {
		if errors.Is(err, localapi.ErrUntrusted) {
			return nil, false, agentErr(err)
		}
		return nil, false, nil
	}
	c := localapi.NewClient(ep)
	resp, err := c.Run(ctx, t.app, t.env, names)
	switch {
	case errors.Is(err, localapi.ErrUnknownOp):
		a.log.WithField("socket", ep.Socket).Debug("the agent does not know RUN; asking with STATUS, LIST and GET")
		return a.readViaAgentOld(ctx, c, ep, t, names)
	case errors.Is(err, localapi.ErrUntrusted):
		return nil, false, agentErr(err)
	case errors.Is(err, localapi.ErrUnreachable), errors.Is(err, localapi.ErrDenied):
		return nil, false, nil
	case err != nil && names == nil:
		return nil, false, agentErr(fmt.Errorf("list %s/%s through the agent: %w", t.app, t.env, err))
	case err != nil:
		return nil, false, agentErr(fmt.Errorf("run: %w", err))
	}
	defer resp.Wipe()
	if !resp.Run.Served {
		return nil, false, nil // locked, or serving another env: as STATUS tells
	}
	a.log.WithField("socket", ep.Socket).Debug("secrets from the agent (RUN)")
	return envOf(t, resp), true, nil
}

// readViaAgentOld is readViaAgent for an agent older than RUN: STATUS, then LIST (without names),
// then GET.
func (a *App) readViaAgentOld(ctx context.Context, c *localapi.Client, ep *localapi.Endpoint, t target, names []string) (*remote.Env, bool, error) {
	st, err := c.Status(ctx)
	if err != nil {
		if errors.Is(err, localapi.ErrUntrusted) {
			return nil, false, agentErr(err)
		}
		return nil, false, nil
	}
	if st.State != localapi.StateUnlocked || (st.App != "" && (st.App != t.app || st.Env != t.env)) {
		return nil, false, nil
	}
	if names == nil {
		if names, err = c.List(ctx, t.app, t.env); err != nil {
			if errors.Is(err, localapi.ErrDenied) {
				return nil, false, nil
			}
			return nil, false, agentErr(fmt.Errorf("list %s/%s through the agent: %w", t.app, t.env, err))
		}
		if len(names) == 0 {
			return &remote.Env{AppName: t.app, EnvName: t.env}, true, nil
		}
	}
	resp, err := c.Get(ctx, t.app, t.env, names)
	if err != nil {
		if errors.Is(err, localapi.ErrDenied) {
			return nil, false, nil
		}
		return nil, false, agentErr(fmt.Errorf("run: %w", err))
	}
	defer resp.Wipe()
	a.log.WithField("socket", ep.Socket).Debug("secrets from the agent")
	return envOf(t, resp), true, nil
}

// envOf copies the secrets of an agent's answer (which the caller wipes).
func envOf(t target, resp *localapi.Response) *remote.Env {
	env := &remote.Env{AppName: t.app, EnvName: t.env}
	for _, s := range resp.Secrets {
		env.Secrets = append(env.Secrets, remote.Secret{Name: s.Name, Value: bytes.Clone(s.Value)})
	}
	sort.Slice(env.Secrets, func(i, j int) bool { return env.Secrets[i].Name < env.Secrets[j].Name })
	return env
}

// run resolves the program, unlocks, fetches and verifies the secrets, and replaces itself with the
// program through execve: the PID, signals, exit status and NOTIFY_SOCKET are the program's own.
func (a *App) run(ctx context.Context, args []string) error {
	fs := a.flags()
	fs.SetInterspersed(false)
	var t target
	t.add(fs)
	only := fs.String("secrets", "", "comma-separated names to pass (default: every secret of the env); a missing name is an error")
	noInherit := fs.Bool("no-inherit", false, "start the program with only the secrets (and systemd's NOTIFY_SOCKET, LISTEN_FDS, ...) in its environment")
	var mf machineFlags
	mf.add(fs)
	var u unlockFlags
	u.add(fs)
	refuseWatch := watchRefusal(fs)
	argv, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := refuseWatch(); err != nil {
		return err
	}
	if err := a.need(t); err != nil {
		return err
	}
	if len(argv) == 0 {
		return usageErr("run: no program given", "usage: ov "+a.cmd.usage)
	}
	var names []string
	if fs.Changed("secrets") && strings.Trim(*only, ", ") == "" {
		return usageErr("--secrets names no secret (leave it out to pass every secret)")
	}
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
	env, err := a.readForRun(ctx, t, mf, u, names)
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
	if err := checkEnvValues(values); err != nil {
		return err
	}
	base := os.Environ()
	if *noInherit {
		base = systemdEnv(base)
	}
	a.log.WithField("program", path).WithField("count", len(values)).Debug("exec")
	sd.RunStarted(t.app, t.env, path, len(values))               // under systemd: the journal entry `ov systemd retire-env` looks for
	return execProgram(path, argv, childenv.Build(base, values)) // base: the caller's, unless --no-inherit
}
