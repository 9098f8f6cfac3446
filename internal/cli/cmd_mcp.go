// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/mcp"
	"github.com/opaquevault/opaquevault/internal/version"
)

func init() {
	register(&command{
		path:    "mcp serve",
		summary: "serve MCP on stdio for AI assistants: secret names and commands run with secrets, never values",
		usage:   "mcp serve [--app APP --env ENV] [--allow PROGRAM...] [--max-output BYTES]",
		examples: []string{
			"claude mcp add opaquevault -- ov mcp serve --app myapp --env dev",
			"ov mcp serve --app myapp --env dev --allow npm --allow go   # only these programs may run",
		},
		run: (*App).mcpServe,
	})
}

func (a *App) mcpServe(ctx context.Context, args []string) error {
	a.daemon.Store(true)
	fs := a.flags()
	app := fs.String("app", "", "the app tools use when the assistant names none")
	env := fs.String("env", "", "the env tools use when the assistant names none")
	allow := fs.StringArray("allow", nil, "only let run_command start this program (repeatable; default: any)")
	maxOut := fs.Int("max-output", 64<<10, "bytes of each output stream returned to the assistant")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if a.g.JSON {
		return usageErr("mcp serve speaks JSON-RPC on stdout; --json does not apply")
	}
	log := logrus.New()
	log.SetOutput(a.io.Err)
	log.SetLevel(map[bool]logrus.Level{true: logrus.DebugLevel, false: logrus.WarnLevel}[a.g.Debug])
	in, out := a.io.In, a.io.Out
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		a.warnf("mcp serve waits for an MCP client on stdin; register it with your assistant, for example: claude mcp add opaquevault -- ov mcp serve")
	}
	err := mcp.Serve(ctx, in, out, mcp.NewAgentSource(nil), mcp.Options{
		Version: version.String(), DefaultApp: *app, DefaultEnv: *env, AllowedCommands: *allow, MaxOutput: *maxOut,
		Log: logrus.NewEntry(log),
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("mcp: %w", err)
	}
	return err
}
