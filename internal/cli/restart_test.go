// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"strings"
	"testing"
)

// `ov run --watch` cannot work (ov is gone once the program runs): it is refused before anything is
// read, with the hint to let systemd restart the unit.
func TestRunWatchIsRefused(t *testing.T) {
	code, out, errb := runOV(t, "run", "--watch", "--app", "myapp", "--env", "production", "--", "/bin/true")
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitUsage, errb)
	}
	if out != "" || !strings.Contains(errb, "ov: error: run --watch: ov run replaces itself with the program") ||
		!strings.Contains(errb, "ov: hint: ") || !strings.Contains(errb, "/etc/ov/restart.d/UNIT.service.conf") {
		t.Fatalf("stdout %q, stderr:\n%s", out, errb)
	}
}
