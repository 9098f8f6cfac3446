// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ov itself may not run under ov mcp serve: it could read any value from the agent.
func TestResolveProgramRefusesOV(t *testing.T) {
	dir := t.TempDir()
	ov := filepath.Join(dir, "ov")
	if err := os.WriteFile(ov, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveProgram(ov, nil, ""); err == nil || !strings.Contains(err.Error(), "ov itself may not run") {
		t.Fatalf("resolveProgram(%s): %v", ov, err)
	}
	self, _ := os.Executable()
	if _, err := resolveProgram(self, nil, ""); err == nil {
		t.Fatal("resolveProgram(this binary) was allowed")
	}
	if _, err := resolveProgram("true", nil, ""); err != nil {
		t.Fatalf("resolveProgram(true): %v", err)
	}
}
