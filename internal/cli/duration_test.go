// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestDurationsTakeDays: every duration flag reads "7d" as --max-age does, the agent's limits
// included; negative or malformed values name the flag.
func TestDurationsTakeDays(t *testing.T) {
	fs := pflag.NewFlagSet("agent serve", pflag.ContinueOnError)
	limits := agentLimitFlags(fs)
	if err := fs.Parse([]string{"--idle-lock", "2d", "--lockout-window", "90m", "--distinct-window", "1d"}); err != nil {
		t.Fatal(err)
	}
	l, err := limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.IdleLock != 48*time.Hour || l.LockoutWindow != 90*time.Minute || l.DistinctWindow != 24*time.Hour {
		t.Errorf("limits %+v", l)
	}
	for _, bad := range []string{"-1h", "-2d", "xd", "7", "1.5d"} {
		fs := pflag.NewFlagSet("agent serve", pflag.ContinueOnError)
		agentLimitFlags(fs)
		err := fs.Parse([]string{"--idle-lock=" + bad})
		if err == nil || !strings.Contains(err.Error(), "--idle-lock") || !strings.Contains(err.Error(), "7d") {
			t.Errorf("--idle-lock %s: %v", bad, err)
		}
	}
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "24h": 24 * time.Hour, "0": 0, "0d": 0} {
		if got, err := readDuration(in); err != nil || got != want {
			t.Errorf("readDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if d, err := parseSince("7d"); err != nil || d != 7*24*time.Hour {
		t.Errorf("--since 7d: %v, %v", d, err)
	}
	if _, err := parseDuration("0d"); err == nil {
		t.Error("parseDuration accepted 0d (max-age and expiry must be positive)")
	}
}
