// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/agentinstall"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/version"
)

func (a *App) agentServe(ctx context.Context, args []string) error {
	a.daemon.Store(true)
	fs := a.flags()
	app := fs.String("app", "", "serve only this app (with --env)")
	env := fs.String("env", "", "serve only this env of --app")
	cred := fs.String("machine-key-credential", "", "load the machine key from $CREDENTIALS_DIRECTORY/NAME (LoadCredential=)")
	userMode := fs.Bool("user-mode", false, "run as this user's agent: socket under $XDG_RUNTIME_DIR/ov, session bus, waits for `ov agent unlock`")
	socket := fs.String("socket", "", "bind this socket when systemd passed none")
	rate := fs.Float64("rate-per-minute", 0, "requests for names or values allowed per uid and minute (default 30, burst 10; -1: no limit)")
	maxAgeFlag := fs.String("max-age", defaultMaxAge, "with a machine key: refuse a cached copy older than this when the server is unreachable")
	limits := agentLimitFlags(fs)
	restartDir := restartDirFlag(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if err := checkScopeFlags(*app, *env); err != nil {
		return err
	}
	maxAge, err := parseDuration(*maxAgeFlag)
	if err != nil {
		return usageErr("--max-age: " + err.Error())
	}
	lim, err := limits()
	if err != nil {
		return usageErr(err.Error())
	}
	log := logrus.NewEntry(sd.NewLogger(map[bool]logrus.Level{true: logrus.DebugLevel, false: logrus.InfoLevel}[a.g.Debug]))
	cfg := agent.Config{App: *app, Env: *env, MachineKeyCredential: *cred, Open: a.agentOpener(log, maxAge), Log: log, Version: version.String(), SocketPath: *socket}
	cfg.Limits, cfg.RestartDir = lim, restartDir(*userMode)
	if *rate != 0 {
		cfg.Rate = agent.Rate{PerMinute: *rate, Burst: max(1, int(*rate/3))}
	}
	if *userMode {
		cfg.Mode = agent.ModeUser
		if cfg.SocketPath == "" {
			cfg.SocketPath = localapi.UserSocketPath()
		}
	}
	if err := agent.Serve(ctx, cfg); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// agentClient finds the agent (--socket, the rendezvous file, or this user's runtime directory).
func (a *App) agentClient(socket string) (*localapi.Client, *localapi.Endpoint, error) {
	ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Socket: socket})
	if err != nil {
		return nil, nil, agentErr(err)
	}
	return localapi.NewClient(ep), ep, nil
}

func (a *App) agentStatus(ctx context.Context, args []string) error {
	fs := a.flags()
	socket := fs.String("socket", "", "talk to the agent on this socket")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	c, ep, err := a.agentClient(*socket)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return agentErr(err)
	}
	if a.g.JSON {
		out := map[string]any{"state": st.State, "app": st.App, "env": st.Env, "key": st.Key, "fingerprint": st.Fingerprint,
			"mode": st.Mode, "owner_uid": st.OwnerUID, "pid": st.PID, "version": st.Version, "socket": ep.Socket, "guarantee": ep.Guarantee()}
		if !st.Since.IsZero() {
			out["since"] = st.Since
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else {
		scope := "any app its key opens"
		if st.App != "" {
			scope = st.App + "/" + st.Env
		}
		fmt.Fprintf(a.io.Out, "Agent:    %s (pid %d, %s mode, ov %s)\nSocket:   %s\nServes:   %s\n", st.State, st.PID, st.Mode, st.Version, ep.Socket, scope)
		if st.Key != "" {
			fmt.Fprintf(a.io.Out, "Key:      %s key %s, loaded %s\n", st.Key, st.Fingerprint, st.Since.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		fmt.Fprintf(a.io.Out, "Trust:    %s\n", ep.Guarantee())
	}
	if st.State != localapi.StateUnlocked {
		return withCode(ExitLocked, errors.New("the agent is locked"), "run `ov agent unlock`")
	}
	return nil
}

func (a *App) agentLock(ctx context.Context, args []string) error {
	fs := a.flags()
	socket := fs.String("socket", "", "talk to the agent on this socket")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	c, _, err := a.agentClient(*socket)
	if err != nil {
		return err
	}
	if err := c.Lock(ctx); err != nil {
		return agentErr(err)
	}
	fmt.Fprintln(a.io.Out, "Agent locked: its keys are wiped.")
	return nil
}

// unlockAgent asks for the password, unwraps the account key and hands it to the agent at c.
func (a *App) unlockAgent(ctx context.Context, c *localapi.Client, u unlockFlags) error {
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	acct := s.vault.Account
	req := &localapi.Unlock{AccountID: bytes.Clone(acct.ID), AKVersion: acct.AKVersion, AccountKey: bytes.Clone(acct.AK.Bytes())}
	defer req.Wipe()
	if err := c.Unlock(ctx, req); err != nil {
		return agentErr(fmt.Errorf("unlock agent: %w", err))
	}
	return nil
}

func (a *App) agentUnlock(ctx context.Context, args []string) error {
	fs := a.flags()
	socket := fs.String("socket", "", "talk to the agent on this socket")
	var u unlockFlags
	u.add(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	c, _, err := a.agentClient(*socket)
	if err != nil {
		return err
	}
	if _, err := c.Status(ctx); err != nil {
		return agentErr(err)
	}
	if err := a.unlockAgent(ctx, c, u); err != nil {
		return err
	}
	fmt.Fprintln(a.io.Out, "Agent unlocked: `ov run` needs no password until `ov agent lock` or logout.")
	return nil
}

func (a *App) agentStart(ctx context.Context, args []string) error {
	fs := a.flags()
	rate := fs.Float64("rate-per-minute", 0, "requests for names or values the agent allows a minute (default 30; -1: no limit)")
	var u unlockFlags
	u.add(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	// Check the password before starting anything.
	if _, err := a.loggedIn(); err != nil {
		return err
	}
	socket := localapi.UserSocketPath()
	if socket == "" {
		return errors.New("start agent: no runtime directory ($XDG_RUNTIME_DIR) for its socket")
	}
	c := localapi.NewClient(&localapi.Endpoint{Socket: socket})
	how := "already running"
	if ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Socket: socket}); err == nil {
		c = localapi.NewClient(ep)
	}
	if _, err := c.Status(ctx); err != nil {
		if how, err = a.launchUserAgent(ctx, socket, *rate); err != nil {
			return err
		}
		ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Socket: socket})
		if err != nil {
			return agentErr(err)
		}
		c = localapi.NewClient(ep)
	}
	if err := a.unlockAgent(ctx, c, u); err != nil {
		return err
	}
	fmt.Fprintf(a.io.Out, "Agent started (%s) and unlocked on %s.\n`ov run --app APP --env ENV -- CMD` needs no password until `ov agent stop` or logout.\n", how, socket)
	return nil
}

// launchUserAgent starts `ov agent serve --user-mode`: under systemd --user when there is one, else
// as a background process of its own session. It returns once the agent answers.
func (a *App) launchUserAgent(ctx context.Context, socket string, rate float64) (string, error) {
	how := "under systemd --user"
	exe, err := ovExecutable()
	if err != nil {
		return "", fmt.Errorf("start agent: %w", err)
	}
	var installErr error = errors.New("a custom --rate-per-minute needs an agent of its own")
	if rate == 0 {
		_, installErr = agentinstall.InstallUser(ctx, agentinstall.UserOptions{Binary: exe, Start: true})
	}
	if installErr != nil {
		how = "in the background"
		if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
			return "", fmt.Errorf("start agent: %w", err)
		}
		cmd := exec.Command(exe, "agent", "serve", "--user-mode", "--socket", socket)
		if rate != 0 {
			cmd.Args = append(cmd.Args, "--rate-per-minute="+strconv.FormatFloat(rate, 'f', -1, 64))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		logf, lerr := os.OpenFile(filepath.Join(filepath.Dir(socket), "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if lerr == nil {
			cmd.Stdout, cmd.Stderr = logf, logf
			defer logf.Close()
		}
		if err := cmd.Start(); err != nil {
			return "", fmt.Errorf("start agent: %w", err)
		}
		_ = cmd.Process.Release()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Socket: socket})
		if err == nil {
			if _, err = localapi.NewClient(ep).Status(ctx); err == nil {
				return how, nil
			}
		}
		if time.Now().After(deadline) {
			return "", withCode(ExitUnreachable, fmt.Errorf("start agent: it did not answer on %s within 10s: %v", socket, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *App) agentStop(ctx context.Context, args []string) error {
	fs := a.flags()
	socket := fs.String("socket", "", "talk to the agent on this socket")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if *socket == "" {
		*socket = localapi.UserSocketPath()
	}
	ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Socket: *socket})
	if err != nil {
		return agentErr(err)
	}
	c := localapi.NewClient(ep)
	st, err := c.Status(ctx)
	if err != nil {
		return agentErr(err)
	}
	if err := c.Lock(ctx); err != nil {
		return agentErr(err)
	}
	if m, err := sd.UserManager(ctx); err == nil {
		_ = m.Stop(ctx, "ov-agent-user.socket")
		_ = m.Stop(ctx, "ov-agent-user.service")
		m.Close()
	}
	if st.PID != 0 && st.OwnerUID == uint32(os.Getuid()) {
		_ = syscall.Kill(int(st.PID), syscall.SIGTERM)
	}
	// "Stopped" means nothing answers on the socket any more: wait for it (the agent wipes its
	// keys and closes its listener on SIGTERM), so that the next command does not find it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := c.Status(ctx); err != nil {
			break
		}
		if time.Now().After(deadline) {
			a.warnf("the agent (pid %d) is locked but still answers on %s", st.PID, ep.Socket)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintln(a.io.Out, "Agent locked and stopped.")
	return nil
}

// installServer finds the server URL to bake into the agent's unit: --server, $OV_SERVER,
// /etc/ov/config, or the config of the user who ran sudo.
func (a *App) installServer() string {
	if a.g.Server != "" {
		return a.g.Server
	}
	if s := a.env("OV_SERVER"); s != "" {
		return s
	}
	if sys, err := readSystemConfig(systemConfigPath); err == nil && sys["server"] != "" {
		return sys["server"]
	}
	if name := a.env("SUDO_USER"); name != "" {
		if u, err := user.Lookup(name); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			buf, err := credentials.ReadSecretFile(filepath.Join(u.HomeDir, ".config", "ov", "config"), credentials.ReadOptions{What: "config"}.WithOwner(uid))
			if err == nil {
				defer buf.Destroy()
				var c struct {
					Server string `json:"server"`
				}
				if json.Unmarshal(buf.Bytes(), &c) == nil {
					return c.Server
				}
			}
		}
	}
	return ""
}

func (a *App) agentInstall(ctx context.Context, args []string) error {
	fs := a.flags()
	key := fs.String("machine-key", "", "the machine key file the service reads through LoadCredential= (required)")
	app := fs.String("app", "", "the app the agent serves (required)")
	env := fs.String("env", "", "the env the agent serves (required)")
	usr := fs.String("user", "", "the service account the agent runs as: User= (required; not root)")
	enable := fs.Bool("enable", false, "ask systemd to reload, enable and start ov-agent.socket")
	root := fs.String("root", "", "write into this root directory instead of / (implies no --enable)")
	binary := fs.String("binary", "", "the ov binary ExecStart= runs (default: this one when installed in /usr/bin or /usr/local/bin)")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	for flag, v := range map[string]string{"--machine-key": *key, "--app": *app, "--env": *env, "--user": *usr} {
		if v == "" {
			return usageErr(flag+" is required", "usage: ov "+a.cmd.usage)
		}
	}
	if err := checkScopeFlags(*app, *env); err != nil {
		return err
	}
	if *usr == "root" || *usr == "0" {
		return usageErr("--user root is refused: the agent runs as the service account that owns the machine key")
	}
	if *root == "" && os.Geteuid() != 0 {
		return withCode(ExitDenied, errors.New("agent install writes /etc/systemd/system and /etc/ov: run it with sudo"), "or pass --root DIR to write into another root")
	}
	if fi, err := os.Stat(filepath.Join(*root, *key)); err != nil {
		a.warnf("the machine key %s cannot be found (%v): the agent will fail to start until it exists", *key, unwrapPathErr(err))
	} else if u, err := user.Lookup(*usr); err == nil && *root == "" {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && strconv.Itoa(int(st.Uid)) != u.Uid {
			a.warnf("the machine key %s is owned by uid %d, not by %s: the agent (User=%s) will refuse it", *key, st.Uid, *usr, *usr)
		}
	}
	server := a.installServer()
	res, err := agentinstall.Install(ctx, agentinstall.Options{Root: *root, App: *app, Env: *env, User: *usr, MachineKey: *key,
		Binary: *binary, Server: server, Enable: *enable && *root == ""})
	if err != nil {
		if errors.Is(err, agentinstall.ErrInvalid) {
			return usageErr(err.Error())
		}
		return err
	}
	if server != "" && *root == "" {
		if err := writeSystemConfig(systemConfigPath, map[string]string{"server": server}); err != nil {
			a.warnf("%v", err)
		}
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"files": res.Files, "enabled": res.Enabled, "warnings": res.Warnings})
	}
	for _, f := range res.Files {
		mark := "✓"
		if !f.Changed {
			mark = "="
		}
		fmt.Fprintf(a.io.Out, "%s %s  %s %04o\n", mark, f.Path, f.Owner, f.Mode.Perm())
	}
	for _, w := range res.Warnings {
		a.warnf("%s", w)
	}
	if res.Enabled {
		fmt.Fprintln(a.io.Out, "ov-agent.socket is enabled and listening; systemd starts the agent on the first connection.")
	}
	fmt.Fprintf(a.io.Out, `
Next (user guide §4): confirm the service can read its secrets, then cut the unit over:
  sudo systemctl stop %[1]s
  ov run --app %[1]s --env %[2]s --machine-key %[3]s -- /path/to/your/server
and in /etc/systemd/system/%[1]s.service:
  ExecStart=/usr/bin/ov run --app %[1]s --env %[2]s --machine-key %[3]s -- /path/to/your/server
  # EnvironmentFile=...   <- delete this line
  sudo systemctl daemon-reload && sudo systemctl start %[1]s
`, *app, *env, *key)
	return nil
}

func (a *App) agentUninstall(ctx context.Context, args []string) error {
	fs := a.flags()
	root := fs.String("root", "", "remove from this root directory instead of /")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	res, err := agentinstall.Uninstall(ctx, agentinstall.UninstallOptions{Root: *root})
	if err != nil {
		return err
	}
	for _, f := range res.Removed {
		fmt.Fprintf(a.io.Out, "✗ %s\n", f.Path)
	}
	if len(res.Removed) == 0 {
		fmt.Fprintln(a.io.Out, "Nothing to remove.")
	}
	return nil
}

// ovExecutable is the path of the running ov: os.Executable, unless that is not named ov (a test
// binary running as ov), in which case the path it was started by.
func ovExecutable() (string, error) {
	exe, err := os.Executable()
	if err == nil && filepath.Base(exe) == "ov" {
		return exe, nil
	}
	if p, lerr := exec.LookPath(os.Args[0]); lerr == nil {
		return filepath.Abs(p)
	}
	return exe, err
}
