// SPDX-License-Identifier: Apache-2.0

// Command ovsd stands in for /usr/bin/ov in TestUnderSystemd: it answers
// the command lines that the installed units and the test run, by calling
// the agent packages directly (the real CLI wiring lives in internal/cli).
// Its key source returns fixed values instead of reading a server.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/agentinstall"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/sd"
)

type fixed struct{ k *agent.Key }

func (f fixed) Read(_ context.Context, app, env string) (*remote.Env, error) {
	return &remote.Env{AppName: app, EnvName: env, Secrets: []remote.Secret{
		{Name: "DATABASE_URL", Version: 1, Value: []byte("postgres://app@db/app")},
		{Name: "KEY_FINGERPRINT", Version: 1, Value: []byte(f.k.Fingerprint())},
	}}, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ovsd: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) < 2 || args[0] != "agent" {
		return fmt.Errorf("usage: ovsd agent serve|install|uninstall|get|status|lock ...")
	}
	fs := flag.NewFlagSet(args[1], flag.ContinueOnError)
	app := fs.String("app", "", "")
	env := fs.String("env", "", "")
	cred := fs.String("machine-key-credential", "", "")
	user := fs.String("user", "", "")
	key := fs.String("machine-key", "", "")
	enable := fs.Bool("enable", false, "")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	switch args[1] {
	case "serve":
		return agent.Serve(ctx, agent.Config{
			App: *app, Env: *env, MachineKeyCredential: *cred, Mode: agent.ModeSystem,
			Open: func(_ context.Context, k *agent.Key) (agent.Source, error) { return fixed{k}, nil },
			Log:  logrus.NewEntry(sd.NewLogger(logrus.InfoLevel)), Version: "ovsd",
		})
	case "install":
		res, err := agentinstall.Install(ctx, agentinstall.Options{App: *app, Env: *env, User: *user, MachineKey: *key, Enable: *enable})
		if res != nil {
			for _, f := range res.Files {
				fmt.Printf("%s %s %o changed=%v\n", f.Path, f.Owner, f.Mode.Perm(), f.Changed)
			}
			fmt.Printf("enabled=%v warnings=%q\n", res.Enabled, res.Warnings)
		}
		return err
	case "uninstall":
		res, err := agentinstall.Uninstall(ctx, agentinstall.UninstallOptions{})
		if res != nil {
			fmt.Printf("removed=%d warnings=%q\n", len(res.Removed), res.Warnings)
		}
		return err
	}
	ep, err := localapi.Discover()
	if err != nil {
		return err
	}
	c := localapi.NewClient(ep)
	switch args[1] {
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("state=%s text=%q key=%s owner=%d system=%v\n", st.State, st.Text(), st.Key, st.OwnerUID, ep.System)
	case "get":
		r, err := c.Get(ctx, *app, *env, fs.Args())
		if err != nil {
			return err
		}
		defer r.Wipe()
		h := sha256.New()
		var names []string
		for _, s := range r.Secrets {
			names = append(names, s.Name)
			h.Write(s.Value)
		}
		fmt.Printf("got=%s digest=%s\n", strings.Join(names, ","), hex.EncodeToString(h.Sum(nil)[:8]))
	case "lock":
		return c.Lock(ctx)
	default:
		return fmt.Errorf("unknown command %q", args[1])
	}
	return nil
}
