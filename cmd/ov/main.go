// SPDX-License-Identifier: Apache-2.0

// Command ov is the OpaqueVault CLI: accounts, secrets, `ov run`, machine keys and the agent.
// It only wires; everything lives in internal/cli.
package main

import (
	"context"
	"os"

	"github.com/opaquevault/opaquevault/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.OSStdio()))
}
