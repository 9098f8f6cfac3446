// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/testutil"
)

func TestMachineServerURLOrder(t *testing.T) {
	dir := testutil.SafeTempDir(t)
	sys := filepath.Join(dir, "config")
	old := systemConfigPath
	systemConfigPath = sys
	defer func() { systemConfigPath = old }()
	if err := writeSystemConfig(sys, map[string]string{"server": "https://from-etc.example"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, "XDG_CONFIG_HOME": filepath.Join(dir, "none")}
	a := &App{env: func(k string) string { return env[k] }}

	a.g.Server = "https://from-flag.example"
	env["OV_SERVER"] = "https://from-env.example"
	for _, want := range []string{"https://from-flag.example", "https://from-env.example", "https://from-etc.example"} {
		got, err := a.machineServerURL()
		if err != nil || got != want {
			t.Fatalf("machineServerURL = %q, %v; want %q", got, err, want)
		}
		if a.g.Server != "" {
			a.g.Server = ""
		} else {
			delete(env, "OV_SERVER")
		}
	}
	// A config file others can change is refused, not trusted.
	if err := os.Chmod(sys, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := a.machineServerURL(); err == nil || !strings.Contains(err.Error(), "must not be group- or world-writable") {
		t.Fatalf("world-writable /etc/ov/config: %v", err)
	}
	if err := os.Remove(sys); err != nil {
		t.Fatal(err)
	}
	if _, err := a.machineServerURL(); exitCode(err) != ExitUsage {
		t.Fatalf("no server anywhere: %v (exit %d), want a usage error", err, exitCode(err))
	}
}
