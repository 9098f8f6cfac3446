// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/mcp"
	"github.com/opaquevault/opaquevault/internal/mcp/sandbox"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/version"
)

func (a *App) mcpServe(ctx context.Context, args []string) error {
	a.daemon.Store(true)
	fs := a.flags()
	app := fs.String("app", "", "limit the tools to this app (and their default)")
	env := fs.String("env", "", "limit the tools to this env of --app (and their default)")
	allow := fs.StringArray("allow-command", nil, "only run command lines matching PATTERN, * matching anything (repeatable); without it, any program but shells and interpreters")
	approve := fs.String("approve", "none", "tty: confirm each call that injects or writes secrets on the controlling terminal; none: do not ask")
	writes := fs.Bool("allow-writes", false, "let set_secret_from_generator create and rotate secrets")
	unisolated := fs.Bool("allow-unisolated-commands", false, "run commands even where they cannot be isolated from the agent (they could then read any secret)")
	maxOut := fs.Int("max-output", 64<<10, "bytes of each output stream returned to the assistant")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if a.g.JSON {
		return usageErr("mcp serve speaks JSON-RPC on stdout; --json does not apply")
	}
	if *env != "" && *app == "" {
		return usageErr("--env needs --app")
	}
	log := sd.NewAuditLogger(map[bool]logrus.Level{true: logrus.DebugLevel, false: logrus.InfoLevel}[a.g.Debug])
	opts := mcp.Options{
		Version: version.String(), App: *app, Env: *env, AllowCommands: *allow, AllowWrites: *writes, MaxOutput: *maxOut,
		Isolation: mcp.Isolation{Hide: sandbox.Paths(a.env, a.g.Config), Unisolated: *unisolated},
		Log:       logrus.NewEntry(log),
	}
	switch *approve {
	case "none":
	case "tty":
		t := &mcp.TTYApprover{}
		if err := t.CheckTTY(); err != nil {
			return withCode(ExitUsage, fmt.Errorf("mcp serve --approve tty: %w", err), "run it from a terminal, or use --approve none")
		}
		opts.Approve = t
	default:
		return usageErr(fmt.Sprintf("--approve %q: want tty or none", *approve))
	}
	in, out := a.io.In, a.io.Out
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		a.warnf("mcp serve waits for an MCP client on stdin; register it with your assistant, for example: claude mcp add opaquevault -- ov mcp serve")
	}
	err := mcp.Serve(ctx, in, out, mcp.NewAgentSource(nil), opts)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("mcp: %w", err)
	}
	return err
}
