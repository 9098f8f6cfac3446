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

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "serve" {
		os.Exit(helperServe())
	}
	os.Exit(m.Run())
}

// helperServe is `ov mcp serve --app myapp --env dev` over testSource.
func helperServe() int {
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
	if err := Serve(context.Background(), os.Stdin, out, testSource(), Options{Version: "helper", DefaultApp: "myapp", DefaultEnv: "dev"}); err != nil {
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
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{
		"command": []string{"sh", "-c", `printf '%s\n' "$TOKEN" >/proc/$PPID/fd/1; printf '%s\n' "$TOKEN" >/proc/$PPID/fd/2; cat /proc/$PPID/environ; echo done`},
	}})
	if err != nil {
		t.Fatalf("call: %v\n%s", err, stderr.String())
	}
	var out runOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	if !strings.Contains(out.Stdout, "done") || !strings.Contains(out.Stderr, "Permission denied") {
		t.Errorf("the command was not refused /proc/$PPID (stdout %q, stderr %q)", out.Stdout, out.Stderr)
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

// TestNodeClient drives the server with the TypeScript SDK's client over
// stdio: an independent implementation of the protocol.
func TestNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: skipping the end-to-end test with a non-Go client")
	}
	dir, _ := filepath.Abs(filepath.Join("testdata", "node"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Skip("@modelcontextprotocol/sdk not installed: run `npm ci` in internal/mcp/testdata/node")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wireFile := filepath.Join(t.TempDir(), "wire")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"), exe)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperEnv+"=serve", helperWireEnv+"="+wireFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, stderr.String())
	}
	type result struct {
		Content []struct {
			Type, Text string
		}
		StructuredContent map[string]any
		IsError           bool
	}
	var got struct {
		Server struct{ Name, Version string }
		Tools  []struct {
			Name        string
			InputSchema map[string]any
		}
		ListSecrets, Printenv, Base64, Missing result
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout)
	}
	if got.Server.Name != "opaquevault" || got.Server.Version != "helper" {
		t.Errorf("server = %+v", got.Server)
	}
	var names []string
	for _, tool := range got.Tools {
		names = append(names, tool.Name)
		if tool.InputSchema["type"] != "object" {
			t.Errorf("%s: schema %v", tool.Name, tool.InputSchema)
		}
	}
	if strings.Join(names, ",") != "list_apps,list_secrets,run_command" {
		t.Errorf("tools = %v", names)
	}
	if c := got.ListSecrets.StructuredContent; c["count"] != 8.0 || c["app"] != "myapp" {
		t.Errorf("list_secrets = %v", c)
	}
	if s := got.Printenv.StructuredContent["stdout"]; s != "[redacted:TOKEN]\n" {
		t.Errorf("printenv stdout = %q", s)
	}
	if s, _ := got.Base64.StructuredContent["stdout"].(string); !strings.HasPrefix(s, "[redacted:TOKEN]") {
		t.Errorf("base64 stdout = %q", s)
	}
	if !got.Missing.IsError || len(got.Missing.Content) == 0 || !strings.Contains(got.Missing.Content[0].Text, `no secret "NOPE" in myapp/dev`) {
		t.Errorf("missing secret = %+v", got.Missing)
	}
	wire, err := os.ReadFile(wireFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(wire, []byte("[redacted:TOKEN]")) {
		t.Fatal("the recorded stream has no redaction: the checks below prove nothing")
	}
	assertNoValues(t, "the server's stdout", wire, testSource())
	assertNoValues(t, "what the node client got", stdout, testSource())
	assertNoValues(t, "the server's stderr", stderr.Bytes(), testSource())
}
