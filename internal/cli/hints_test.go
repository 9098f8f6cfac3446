// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestAgentInstallHintNeverRoot: `ov agent install --user root` is refused, so the hint printed
// after `derive-machine-key` run as root must not suggest it.
func TestAgentInstallHintNeverRoot(t *testing.T) {
	var b bytes.Buffer
	agentInstallHint(&b, "/etc/ov/myapp.key", "myapp", "production", "root")
	if strings.Contains(b.String(), "--user root") || !strings.Contains(b.String(), "--user SERVICE_USER") ||
		!strings.Contains(b.String(), "chown SERVICE_USER /etc/ov/myapp.key") {
		t.Errorf("as root:\n%s", b.String())
	}
	b.Reset()
	agentInstallHint(&b, "/etc/ov/myapp.key", "myapp", "production", "deploy")
	if want := "Next: sudo ov agent install --machine-key /etc/ov/myapp.key --app myapp --env production --user deploy --enable\n"; b.String() != want {
		t.Errorf("as deploy: %q", b.String())
	}
}

// TestInterruptedSaysSo: a command cut short by SIGINT exits 130 with "interrupted", whatever
// error the cancellation surfaced as (a request that reports it as unreachable included).
func TestInterruptedSaysSo(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("read env: %w", context.Canceled),
		withCode(ExitUnreachable, fmt.Errorf("fetch account: reach server: %w", context.Canceled)),
	} {
		var out bytes.Buffer
		a := &App{io: Stdio{Out: &out, Err: &out}, cmd: &command{path: "run"}}
		a.intr.Store(true)
		if code := a.finish(err); code != ExitInterrupted {
			t.Errorf("%v: exit %d, want %d", err, code, ExitInterrupted)
		}
		if out.String() != "ov: error: interrupted\n" {
			t.Errorf("%v: printed %q", err, out.String())
		}
	}
}
