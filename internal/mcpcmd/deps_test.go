// SPDX-License-Identifier: Apache-2.0

package mcpcmd

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestOVDoesNotLinkMCP fails if ov links the MCP server again: its packages' initialisation (the SDK,
// encoding/gob, jsonschema) would be paid by every `ov run`. ov-mcp must link it.
func TestOVDoesNotLinkMCP(t *testing.T) {
	gobin, err := exec.LookPath("go") // go test puts $GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("skip: go command not found: %v", err)
	}
	const mod = "github.com/opaquevault/opaquevault"
	deps := func(cmd string) []string {
		out, err := exec.Command(gobin, "list", "-deps", mod+"/cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps ./cmd/%s: %v\n%s", cmd, err, out)
		}
		return strings.Fields(string(out))
	}
	linked := func(ds []string, p string) bool {
		return slices.ContainsFunc(ds, func(d string) bool { return d == p || strings.HasPrefix(d, p+"/") })
	}
	ov, ovMCP := deps("ov"), deps("ov-mcp")
	// internal/mcp itself, not internal/mcp/sandbox: ov is its own sandbox helper.
	if slices.Contains(ov, mod+"/internal/mcp") {
		t.Errorf("ov depends on %s/internal/mcp: keep the MCP server in ov-mcp", mod)
	}
	for _, p := range []string{"github.com/modelcontextprotocol/go-sdk", "github.com/google/jsonschema-go", "encoding/gob"} {
		if linked(ov, p) {
			t.Errorf("ov depends on %s: keep the MCP server in ov-mcp", p)
		}
	}
	// The lists must be real: ov has the CLI and the sandbox helper, ov-mcp the server.
	for _, p := range []string{mod + "/internal/cli", mod + "/internal/mcp/sandbox"} {
		if !linked(ov, p) {
			t.Errorf("go list -deps does not list %s for ov; the check above proves nothing", p)
		}
	}
	for _, p := range []string{mod + "/internal/mcp", "github.com/modelcontextprotocol/go-sdk"} {
		if !linked(ovMCP, p) {
			t.Errorf("ov-mcp does not depend on %s", p)
		}
	}
}
