// SPDX-License-Identifier: Apache-2.0

// Package mcpcmd is the ov-mcp executable: ov with the MCP server (internal/mcp and the MCP SDK)
// linked in. `ov mcp serve` execs it, so that the SDK's package initialisation is paid by the MCP
// server alone, never by `ov run`. It is also the sandbox helper of the commands it runs.
package mcpcmd

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/cli"
	"github.com/opaquevault/opaquevault/internal/mcp"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/version"
)

// Main runs ov-mcp with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.MainMCP(ctx, args, stdio, serve)
}

func serve(ctx context.Context, c *cli.MCPServeConfig) error {
	level := logrus.InfoLevel
	if c.Debug {
		level = logrus.DebugLevel
	}
	opts := mcp.Options{
		Version: version.String(), App: c.App, Env: c.Env, AllowCommands: c.AllowCommands, AllowWrites: c.AllowWrites,
		MaxOutput: c.MaxOutput, Isolation: mcp.Isolation{Hide: c.Hide, Unisolated: c.Unisolated},
		Log: logrus.NewEntry(sd.NewAuditLogger(level)),
	}
	if c.ApproveTTY {
		t := &mcp.TTYApprover{}
		if err := t.CheckTTY(); err != nil {
			return cli.MCPUsageError(fmt.Errorf("mcp serve --approve tty: %w", err), "run it from a terminal, or use --approve none")
		}
		opts.Approve = t
	}
	return mcp.Serve(ctx, c.In, c.Out, mcp.NewAgentSource(nil), opts)
}
