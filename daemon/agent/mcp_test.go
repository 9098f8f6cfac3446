// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// A process whose ancestor is `… mcp serve …` is recognised; this process is not.
func TestMCPAncestor(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("skip: no /proc")
	}
	// sh's argv is [sh -c SCRIPT mcp serve]: it stands for an `ov mcp serve` parent.
	cmd := exec.Command("sh", "-c", "sleep 5 & echo $!; wait", "mcp", "serve")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("no child pid")
	}
	child, err := strconv.Atoi(sc.Text())
	if err != nil {
		t.Fatal(err)
	}
	if got := mcpAncestor(int32(child)); got != int32(cmd.Process.Pid) {
		t.Fatalf("mcpAncestor(child of an mcp server) = %d, want %d", got, cmd.Process.Pid)
	}
	if got := mcpAncestor(int32(cmd.Process.Pid)); got != 0 {
		t.Fatalf("mcpAncestor(the mcp server itself) = %d, want 0", got)
	}
	if got := mcpAncestor(int32(os.Getpid())); got != 0 {
		t.Fatalf("mcpAncestor(this test) = %d, want 0", got)
	}
}
