// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// helperEnv makes the test binary serve MCP on its stdio instead of running
// tests (see TestMain); helperWireEnv names a file that gets a copy of what
// it writes to stdout.
const (
	helperEnv     = "OV_MCP_TEST_HELPER"
	helperWireEnv = "OV_MCP_TEST_WIRE"
)

// HelperEnv is helperEnv, for TestMain.
const HelperEnv = helperEnv

// HelperServe is `ov mcp serve --app myapp --env dev --allow-command '*'`
// over testSource, for the test binary started with helperEnv=serve (see
// TestMain in e2e_agent_test.go).
func HelperServe() int {
	var out io.Writer = os.Stdout
	if p := os.Getenv(helperWireEnv); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	if err := Serve(context.Background(), os.Stdin, out, testSource(), Options{Version: "helper", App: "myapp", Env: "dev", AllowCommands: []string{"*"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestSubprocessCannotWriteAroundRedactor runs the server as its own
// process on real stdio, and a command that writes a value straight into the
// server's stdout through /proc/$PPID/fd/1. The server being non-dumpable,
// the open fails; every byte the client receives is checked.
func TestSubprocessCannotWriteAroundRedactor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("non-dumpable hardening is Linux only")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The protocol runs over pipes, as under Claude Code (a socket could not
	// be opened through /proc at all).
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	if os.Getuid() == 0 {
		// Root may open any process's /proc entries (CAP_SYS_PTRACE): run
		// the server, and so its commands, as nobody, from a copy of the
		// test binary that nobody can execute, on pipes that nobody owns.
		exe = copyExecutable(t, exe)
		cmd = exec.Command(exe)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = filepath.Dir(exe)
		for _, f := range []*os.File{inR, inW, outR, outW} {
			if err := f.Chown(65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd.Env = append(os.Environ(), helperEnv+"=serve")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin, cmd.Stdout = inR, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	stdin, stdout := inW, outR
	wire := &recorder{}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: io.NopCloser(io.TeeReader(stdout, wire)), Writer: stdin}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_with_secrets", Arguments: map[string]any{
		"secrets": []string{"TOKEN"}, "command": []string{"sh", "-c", `printf '%s\n' "$TOKEN" >/proc/$PPID/fd/1; printf '%s\n' "$TOKEN" >/proc/$PPID/fd/2; cat /proc/$PPID/environ; echo done`},
	}})
	if err != nil {
		t.Fatalf("call: %v\n%s", err, stderr.String())
	}
	var out runOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	// In the sandbox the server is not even visible: $PPID is the sandbox's
	// init, whose stdout is the command's own (and redacted).
	if !strings.Contains(out.Stdout, "done") || !strings.Contains(out.Stdout, "[redacted:TOKEN]") {
		t.Errorf("stdout %q, stderr %q", out.Stdout, out.Stderr)
	}
	cs.Close()
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("server exited with %v\n%s", err, stderr.String())
	}
	assertNoValues(t, "the server's stdout", wire.Bytes(), testSource())
	assertNoValues(t, "the server's stderr", stderr.Bytes(), testSource())
}

// copyExecutable copies exe into a directory that every user can enter.
func copyExecutable(t *testing.T, exe string) string {
	t.Helper()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "mcp.test")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
