//go:build tools

// Package deps pins modules that later packages use, so that go.mod stays stable while they are written.
package deps

import (
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/godbus/dbus/v5"
	_ "github.com/google/renameio/v2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/sirupsen/logrus"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
	_ "golang.org/x/text/unicode/norm"
	_ "modernc.org/sqlite"
)
