// SPDX-License-Identifier: Apache-2.0

// Command ov-server is the OpaqueVault API server. It stores ciphertext and never sees key
// material; everything lives in package daemon/server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/opaquevault/opaquevault/daemon/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := server.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
