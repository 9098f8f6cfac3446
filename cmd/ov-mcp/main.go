// SPDX-License-Identifier: Apache-2.0

// Command ov-mcp is the MCP server behind `ov mcp serve`, which execs it; it is ov with the MCP SDK
// linked in, kept apart so that no other ov command pays for the SDK's start-up. It only wires;
// everything lives in internal/mcpcmd.
package main

import (
	"context"
	"os"

	"github.com/opaquevault/opaquevault/internal/cli"
	"github.com/opaquevault/opaquevault/internal/mcpcmd"
)

func main() {
	os.Exit(mcpcmd.Main(context.Background(), os.Args[1:], cli.OSStdio()))
}
