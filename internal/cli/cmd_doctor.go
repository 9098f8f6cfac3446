// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/doctor"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// doctorSystemd is the service manager the doctor asks (tests replace it).
var doctorSystemd = func(ctx context.Context) (doctor.Systemd, func(), error) {
	m, err := sd.SystemManager(ctx)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}

// doctorRendezvous is the rendezvous file the doctor checks (tests replace it).
var doctorRendezvous = localapi.DefaultRendezvous

type doctorOut struct {
	Checks []doctor.Result `json:"checks"`
	Passed int             `json:"passed"`
	Failed int             `json:"failed"`
}

// doctor runs the checks and prints ✓/✗ with the fix for each failure. It exits 1 when a check fails.
func (a *App) doctor(ctx context.Context, args []string) error {
	fs := a.flags()
	unit := fs.String("unit", "", "the service to check; its ExecStart= (ov run ...) gives the key, app, env, secrets and user")
	keyFile := fs.String("machine-key", "", "the machine key file (default: from the unit's ov run)")
	app := fs.String("app", "", "the app (default: from the unit's ov run)")
	env := fs.String("env", "", "the environment (default: from the unit's ov run)")
	owner := fs.String("user", "", "the user that runs ov run and must own the key (default: the unit's User=, else you)")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if err := checkScopeFlags(*app, *env); err != nil {
		return err
	}
	if *unit != "" && !strings.Contains(*unit, ".") {
		*unit += ".service"
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var rs []doctor.Result
	add := func(r ...doctor.Result) { rs = append(rs, r...) }

	sys, closeSys, sysErr := doctorSystemd(ctx)
	if closeSys != nil {
		defer closeSys()
	}
	installed := false
	if sysErr == nil {
		r, inst := doctor.AgentUnits(ctx, sys)
		add(r)
		installed = inst
	} else {
		add(doctor.Result{Name: "systemd", Status: doctor.Skip, Detail: fmt.Sprintf("not asked: %v", sysErr)})
	}
	add(doctor.AgentEndpoint(ctx, doctorRendezvous, installed))

	var u *sd.UnitInfo
	var run *doctor.RunArgs
	home := ""
	if *unit != "" {
		if sysErr != nil {
			add(doctor.Result{Name: "unit", Status: doctor.Fail, Detail: fmt.Sprintf("cannot read %s: %v", *unit, sysErr), Fix: "run ov doctor on the machine that runs the unit, booted with systemd"})
		} else if info, err := sys.Unit(ctx, *unit); err != nil {
			add(doctor.Result{Name: "unit", Status: doctor.Fail, Detail: err.Error(), Fix: "run ov doctor as root"})
		} else {
			u = info
			add(doctor.UnitState(u))
			if u.LoadState == "loaded" {
				add(doctor.DaemonReload(u), doctor.EnvironmentFile(u))
				self, _ := os.Executable()
				var r doctor.Result
				r, run = doctor.ExecStart(u, self)
				add(r)
			}
		}
	}
	if run != nil {
		*keyFile = firstOf(*keyFile, run.MachineKey)
		*app = firstOf(*app, run.App)
		*env = firstOf(*env, run.Env)
	}
	if u != nil && *owner == "" {
		*owner = u.User
		if u.User == "" {
			*owner = "root"
		}
	}
	if *owner == "" {
		*owner = fmt.Sprint(os.Geteuid())
		if cur, err := user.Current(); err == nil && cur.Username != "" {
			*owner = cur.Username
		}
	}
	if _, h, err := doctor.LookupUser(*owner); err == nil {
		home = h
	}

	var mk *vault.MachineKey
	switch {
	case *keyFile != "":
		var r doctor.Result
		r, mk = doctor.KeyFile(*keyFile, *owner)
		add(r)
	case run != nil && run.KeyCredential != "":
		add(doctor.Result{Name: "machine key", Status: doctor.Skip, Detail: "from the credential " + run.KeyCredential + " (LoadCredential=): systemd checks it when the unit starts"})
	case u != nil && u.DynamicUser:
		add(doctor.Result{Name: "machine key", Status: doctor.Skip, Detail: "DynamicUser=: the key must come from LoadCredential="})
	default:
		add(doctor.Result{Name: "machine key", Status: doctor.Skip, Detail: "no --machine-key given and none in the unit"})
	}
	if mk != nil {
		defer mk.Wipe()
	}

	var runServer, envServer string
	if run != nil {
		runServer = run.Server
	}
	if u != nil {
		for _, kv := range u.Environment {
			if v, ok := strings.CutPrefix(kv, "OV_SERVER="); ok && v != "" {
				envServer = v
			}
		}
	}
	server := a.unitServerURL(runServer, envServer, *owner)
	if server == "" {
		add(doctor.Result{Name: "server", Status: doctor.Fail, Detail: "no server configured", Fix: "write server=URL to /etc/ov/config, or pass --server URL"})
	}
	if server != "" {
		opts := api.ClientOptions{Timeout: 15 * time.Second}
		if mk != nil {
			tok := mk.Token()
			opts.Token = string(tok)
			clear(tok)
		}
		c, err := api.NewClient(server, opts)
		if err != nil {
			add(doctor.Result{Name: "server", Status: doctor.Fail, Detail: err.Error(), Fix: "fix server= in /etc/ov/config"})
		} else {
			sr := doctor.Server(ctx, c)
			add(sr, doctor.Clock(ctx, server, time.Now))
			switch {
			case sr.Status != doctor.Pass:
			case mk == nil:
				add(doctor.Result{Name: "grant", Status: doctor.Skip, Detail: "no machine key to check"})
			case *app == "" || *env == "":
				add(doctor.Result{Name: "grant", Status: doctor.Fail, Detail: "no --app and --env to check the key against", Fix: "pass --app APP --env ENV, or --unit UNIT"})
			default:
				var names []string
				if run != nil {
					names = run.Secrets
				}
				add(doctor.Grant(ctx, c, mk, *app, *env, names)...)
			}
		}
	}
	if mk != nil {
		dir := a.cacheDir()
		if u != nil {
			dir = doctor.CacheDir(u, home)
		}
		add(doctor.Cache(dir, mk, time.Now()))
	}

	failed := doctor.Failed(rs)
	if a.g.JSON {
		if err := a.printJSON(doctorOut{Checks: rs, Passed: len(rs) - failed, Failed: failed}); err != nil {
			return err
		}
	} else {
		for _, r := range rs {
			fmt.Fprintf(a.io.Out, "%s %s: %s\n", r.Mark(), r.Name, r.Detail)
			if r.Fix != "" && r.Status != doctor.Pass {
				fmt.Fprintf(a.io.Out, "    fix: %s\n", r.Fix)
			}
		}
	}
	if failed > 0 {
		return withCode(ExitFailure, fmt.Errorf("doctor: %d of %d checks failed", failed, len(rs)))
	}
	if !a.g.JSON {
		fmt.Fprintf(a.io.Out, "All checks passed.\n")
	}
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// unitServerURL picks the server the unit's `ov run` uses: its --server, its OV_SERVER, then
// --server/$OV_SERVER of this command, /etc/ov/config, and last the server named in the config of
// the unit's user (read as that user's file; only its server field is used). An empty result
// means none was found.
func (a *App) unitServerURL(runServer, unitEnvServer, owner string) string {
	for _, s := range []string{runServer, unitEnvServer, a.g.Server, a.env("OV_SERVER")} {
		if s != "" {
			return s
		}
	}
	if sys, err := readSystemConfig(systemConfigPath); err == nil && sys["server"] != "" {
		return sys["server"]
	}
	uid, home, err := doctor.LookupUser(owner)
	if err == nil && home != "" {
		p := filepath.Join(home, ".config", "ov", "config")
		if buf, err := credentials.ReadSecretFile(p, credentials.ReadOptions{MaxSize: maxConfigSize, What: "config"}.WithOwner(uid)); err == nil {
			var c struct {
				Server string `json:"server"`
			}
			err := json.Unmarshal(buf.Bytes(), &c)
			buf.Destroy()
			if err == nil && c.Server != "" {
				return c.Server
			}
		}
	}
	if s, err := a.machineServerURL(); err == nil {
		return s
	}
	return ""
}
