// SPDX-License-Identifier: Apache-2.0

package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Journald is where Debian installs systemd-journald.
const Journald = "/lib/systemd/systemd-journald"

// InPrivateJournal runs the test binary's test inner (with env, e.g. "OV_INNER=1", set) in a
// private mount namespace that has its own systemd-journald on a fresh /run and /var/log/journal,
// so that inner can log to a real journal and read it back with journalctl. It returns inner's
// output and fails the test when inner fails. It skips, saying why, without root, journald,
// unshare or journalctl.
func InPrivateJournal(t *testing.T, inner, env string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for a private mount namespace")
	}
	if _, err := os.Stat(Journald); err != nil {
		t.Skip("skipping: systemd-journald not installed (Debian package systemd)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skipping: unshare not installed (util-linux)")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("skipping: journalctl not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /var/log/journal
mount -t tmpfs tmpfs /var/log/journal
` + Journald + ` &
JP=$!
i=0; while [ ! -S /run/systemd/journal/stdout ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
rc=0
"$0" -test.run="^$1\$" -test.v || rc=$?
kill $JP
wait $JP || true
exit $rc`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, self, inner)
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a private journal: %v\n%s", inner, err, out)
	}
	return string(out)
}
