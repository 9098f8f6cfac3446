// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sirupsen/logrus"
)

// memSource is a fixed in-memory Source: app → env → name → value.
type memSource struct {
	data    map[string]map[string]map[string]string
	appsErr error
	getErr  error
}

func (m *memSource) Apps(context.Context) ([]AppEnvs, error) {
	if m.appsErr != nil {
		return nil, m.appsErr
	}
	var out []AppEnvs
	for _, app := range slices.Sorted(mapKeys(m.data)) {
		out = append(out, AppEnvs{App: app, Envs: slices.Sorted(mapKeys(m.data[app]))})
	}
	return out, nil
}

func (m *memSource) List(_ context.Context, app, env string) ([]string, error) {
	e, ok := m.data[app][env]
	if !ok {
		return nil, withHint(fmt.Errorf("list secrets of %s/%s: not found", app, env), "check the names with list_apps")
	}
	return slices.Sorted(mapKeys(e)), nil
}

func (m *memSource) Get(_ context.Context, app, env string, names []string) (map[string][]byte, error) {
	if m.getErr != nil {
		return nil, m.getErr
	}
	out := map[string][]byte{}
	for _, n := range names {
		v, ok := m.data[app][env][n]
		if !ok {
			return nil, fmt.Errorf("get secrets of %s/%s: not found: %q", app, env, n)
		}
		out[n] = []byte(v)
	}
	return out, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

const testLongToken = "ghp_" + "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdef0123"

func testSource() *memSource {
	return &memSource{data: map[string]map[string]map[string]string{
		"myapp": {
			"dev": {
				"TOKEN":        testToken,
				"LONG_TOKEN":   testLongToken,
				"PRIVATE_KEY":  testPEM,
				"DB_PASSWORD":  testPassword,
				"DATABASE_URL": "postgres://app:" + testPassword + "@db:5432/app",
				"PORT":         "42",
				"not-a-var":    "unusable-name-value",
				"BINARY":       "bin\x00ary-value",
			},
			"prod": {"TOKEN": "prod-token-value-0001"},
		},
		"other": {"staging": {}},
	}}
}

// recorder keeps every byte the server wrote.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

type harness struct {
	cs   *mcp.ClientSession
	wire *recorder // the server's JSON-RPC output, as sent
	log  *recorder // the server's log
}

// start runs Serve on a pair of pipes and connects the SDK's client to it.
func start(t *testing.T, src Source, opts Options) *harness {
	t.Helper()
	h := &harness{wire: &recorder{}, log: &recorder{}}
	l := logrus.New()
	l.SetOutput(h.log)
	opts.Log = logrus.NewEntry(l)
	if opts.Version == "" {
		opts.Version = "1.2.3-test"
	}
	fromServer, serverOut := io.Pipe()
	serverIn, toServer := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := Serve(ctx, serverIn, serverOut, src, opts)
		serverOut.Close()
		done <- err
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: io.NopCloser(io.TeeReader(fromServer, h.wire)), Writer: toServer}, nil)
	if err != nil {
		cancel()
		t.Fatalf("connect: %v", err)
	}
	h.cs = cs
	t.Cleanup(func() {
		cs.Close()
		toServer.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after the client closed its end", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after the client closed its end")
		}
		cancel()
	})
	return h
}

func (h *harness) call(t *testing.T, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := h.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func (h *harness) run(t *testing.T, args map[string]any) runOut {
	t.Helper()
	res := h.call(t, "run_command", args)
	if res.IsError {
		t.Fatalf("run_command %v failed: %s", args["command"], text(res))
	}
	var out runOut
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("structured content: %v", err)
	}
	return out
}

// forms returns what a value must never appear as in anything the model gets.
func forms(v string) map[string]string {
	f := map[string]string{
		"raw":             v,
		"base64":          base64.StdEncoding.EncodeToString([]byte(v)),
		"base64 unpadded": base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64url":       base64.URLEncoding.EncodeToString([]byte(v)),
		// The part of base64(v + "\n") (echo | base64) that v determines.
		"base64 of echo": base64.StdEncoding.EncodeToString([]byte(v + "\n"))[:len(v)*8/6],
		"hex":            hex.EncodeToString([]byte(v)),
		"HEX":            strings.ToUpper(hex.EncodeToString([]byte(v))),
		"QueryEscape":    url.QueryEscape(v),
		"PathEscape":     url.PathEscape(v),
		"quote":          pyQuote(v),
		"JSON":           jsonEsc(v),
		"JSON, no HTML escaping (Python, JavaScript)": string(bytes.Trim(jsonString(v, false), `"`)),
		"JSON in JSON": jsonEsc(jsonEsc(v)),
	}
	for i, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); len(line) >= minLineLen {
			f["line "+strconv.Itoa(i)] = line
			f["JSON line "+strconv.Itoa(i)] = jsonEsc(line)
		}
	}
	return f
}

// assertNoValues fails if b holds any form of any value of src that is long
// enough to be redacted.
func assertNoValues(t *testing.T, what string, b []byte, src *memSource) {
	t.Helper()
	for app, envs := range src.data {
		for env, secrets := range envs {
			for name, v := range secrets {
				if len(v) < MinRedactLen {
					continue
				}
				for form, s := range forms(v) {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s holds %s/%s %s as %s", what, app, env, name, form)
					}
				}
				// Nor any 12 bytes of it: a part of a value is a leak too.
				for i := 0; i+12 <= len(v); i++ {
					if w := v[i : i+12]; !strings.Contains(w, "\n") && bytes.Contains(b, []byte(w)) {
						t.Errorf("%s holds %q, part of %s/%s %s", what, w, app, env, name)
						break
					}
				}
			}
		}
	}
}

func TestInitializeAndToolsList(t *testing.T) {
	h := start(t, testSource(), Options{DefaultApp: "myapp"})
	init := h.cs.InitializeResult()
	if init.ServerInfo.Name != "opaquevault" || init.ServerInfo.Version != "1.2.3-test" {
		t.Errorf("server info = %+v", init.ServerInfo)
	}
	if caps, _ := json.Marshal(init.Capabilities); bytes.Contains(caps, []byte(`"logging"`)) {
		t.Errorf("server advertises logging (%s): nothing may be logged over MCP", caps)
	}
	if !strings.Contains(init.Instructions, "never values") {
		t.Errorf("instructions = %q", init.Instructions)
	}
	res, err := h.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]map[string]any{}
	for _, tool := range res.Tools {
		b, _ := json.Marshal(tool.InputSchema)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] != "object" {
			t.Errorf("%s: input schema type %v", tool.Name, m["type"])
		}
		schemas[tool.Name] = m
	}
	if got := slices.Sorted(mapKeys(schemas)); !slices.Equal(got, []string{"list_apps", "list_secrets", "run_command"}) {
		t.Fatalf("tools = %v", got)
	}
	run := schemas["run_command"]
	props := run["properties"].(map[string]any)
	for _, p := range []string{"app", "env", "command", "secrets", "cwd", "timeout_seconds", "stdin"} {
		if props[p] == nil {
			t.Errorf("run_command has no %s parameter", p)
		}
	}
	timeout := props["timeout_seconds"].(map[string]any)
	if timeout["maximum"] != 600.0 || timeout["minimum"] != 1.0 || timeout["default"] != 60.0 {
		t.Errorf("timeout_seconds schema = %v", timeout)
	}
	if cmd := props["command"].(map[string]any); cmd["type"] != "array" || cmd["minItems"] != 1.0 {
		t.Errorf("command schema = %v", cmd)
	}
	// app has a default, env has none: only env and command are required.
	req := run["required"].([]any)
	if !slices.Contains(req, any("command")) || !slices.Contains(req, any("env")) || slices.Contains(req, any("app")) {
		t.Errorf("required = %v", req)
	}
	if d := props["app"].(map[string]any)["description"].(string); !strings.Contains(d, `"myapp"`) {
		t.Errorf("app description does not give the default: %q", d)
	}
}

func TestListSecrets(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{})
	res := h.call(t, "list_secrets", map[string]any{"app": "myapp", "env": "dev"})
	if res.IsError {
		t.Fatal(text(res))
	}
	var out namesOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	want := []string{"BINARY", "DATABASE_URL", "DB_PASSWORD", "LONG_TOKEN", "PORT", "PRIVATE_KEY", "TOKEN", "not-a-var"}
	if !slices.Equal(out.Names, want) || out.Count != len(want) || out.App != "myapp" || out.Env != "dev" {
		t.Errorf("list_secrets = %+v", out)
	}
	// No default app: app is required, and the schema says so.
	res, err := h.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_secrets", Arguments: map[string]any{"env": "dev"}})
	if err == nil && !res.IsError {
		t.Error("list_secrets without app or default succeeded")
	}
	res = h.call(t, "list_secrets", map[string]any{"app": "nope", "env": "dev"})
	if !res.IsError || !strings.Contains(text(res), "nope/dev") || !strings.Contains(text(res), "hint: check the names") {
		t.Errorf("unknown app: %s", text(res))
	}
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), src)
}

func TestListApps(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	res := h.call(t, "list_apps", nil)
	if res.IsError {
		t.Fatal(text(res))
	}
	var out appsOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	if len(out.Apps) != 2 || out.Apps[0].App != "myapp" || !slices.Equal(out.Apps[0].Envs, []string{"dev", "prod"}) || out.DefaultEnv != "dev" {
		t.Errorf("list_apps = %+v", out)
	}

	src.appsErr = withHint(fmt.Errorf("list apps: the agent holds an account key: %w", ErrUnsupported), "ask the user which app and env to use")
	res = h.call(t, "list_apps", nil)
	if !res.IsError || !strings.Contains(text(res), "unsupported operation") || !strings.Contains(text(res), `started for app "myapp"`) || !strings.Contains(text(res), "hint: ask the user") {
		t.Errorf("unsupported: %s", text(res))
	}
}

func TestRunCommandRedacts(t *testing.T) {
	// The interpreter itself, not a pyenv shim that takes half a second.
	python, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skip("python3 not found")
	}
	src := testSource()
	h := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	py := func(code string) []string {
		return []string{strings.TrimSpace(string(python)), "-c", "import os, sys, json, base64, urllib.parse\n" + code}
	}
	cases := []struct {
		name    string
		command []string
		label   string
	}{
		{"printenv", []string{"printenv", "TOKEN"}, "TOKEN"},
		{"echo | base64", []string{"sh", "-c", `echo "$TOKEN" | base64`}, "TOKEN"},
		{"echo | base64, wrapped", []string{"sh", "-c", `echo "$LONG_TOKEN" | base64`}, "LONG_TOKEN"},
		{"base64 of a prefixed value", []string{"sh", "-c", `printf 'TOKEN=%s' "$TOKEN" | base64 -w0`}, "TOKEN"},
		{"url quote", py(`print(urllib.parse.quote(os.environ["TOKEN"], safe=""))`), "TOKEN"},
		{"url quote_plus", py(`print(urllib.parse.quote_plus(os.environ["TOKEN"]))`), "TOKEN"},
		{"json.dumps", py(`print(json.dumps({"t": os.environ["TOKEN"], "k": os.environ["PRIVATE_KEY"]}))`), "PRIVATE_KEY"},
		{"hex", py(`print(os.environ["TOKEN"].encode().hex())`), "TOKEN"},
		{"urlsafe base64", py(`print(base64.urlsafe_b64encode(os.environ["TOKEN"].encode()).decode())`), "TOKEN"},
		{"stderr", py(`sys.stderr.write("error: connect " + os.environ["DATABASE_URL"] + "\n"); sys.exit(3)`), "DATABASE_URL"},
		{"PEM", []string{"sh", "-c", `printf '%s' "$PRIVATE_KEY"`}, "PRIVATE_KEY"},
		{"PEM through unquoted echo", []string{"sh", "-c", `echo $PRIVATE_KEY`}, "PRIVATE_KEY"},
		{"env", []string{"env"}, "DB_PASSWORD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := h.run(t, map[string]any{"command": c.command})
			got := out.Stdout + out.Stderr
			if !strings.Contains(got, "[redacted:"+c.label+"]") {
				t.Errorf("no [redacted:%s] in output:\n%s", c.label, got)
			}
			assertNoValues(t, "the output", []byte(got), src)
		})
	}
	out := h.run(t, map[string]any{"command": []string{"sh", "-c", "exit 0"}})
	if !slices.Equal(out.Injected, []string{"DATABASE_URL", "DB_PASSWORD", "LONG_TOKEN", "PORT", "PRIVATE_KEY", "TOKEN"}) {
		t.Errorf("injected = %v (all of the env's by default)", out.Injected)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "PORT shorter than 4 bytes") }) {
		t.Errorf("no note about the short value: %v", out.Notes)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, `not injected: "BINARY", holding a NUL byte`) }) {
		t.Errorf("no note about the value holding NUL: %v", out.Notes)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, `not injected: "not-a-var"`) }) {
		t.Errorf("no note about the name that is not a variable: %v", out.Notes)
	}
	// The whole stream, as sent: structured content and the JSON text
	// content (JSON inside JSON) alike.
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), src)
	assertNoValues(t, "the server's log", h.log.Bytes(), src)
	if !bytes.Contains(h.wire.Bytes(), []byte("[redacted:TOKEN]")) {
		t.Fatal("the stream holds no redaction at all: the check above proves nothing")
	}
}

func TestRunCommandSecretsAndEnv(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev", Env: func() []string {
		return []string{"PATH=" + os.Getenv("PATH"), "INHERITED=yes", "TOKEN=shadowed"}
	}})
	out := h.run(t, map[string]any{"command": []string{"sh", "-c", `echo "inherited=$INHERITED pw=${DB_PASSWORD:-unset} token=$TOKEN"`}, "secrets": []string{"TOKEN"}})
	if want := "inherited=yes pw=unset token=[redacted:TOKEN]\n"; out.Stdout != want {
		t.Errorf("stdout = %q, want %q", out.Stdout, want)
	}
	if !slices.Equal(out.Injected, []string{"TOKEN"}) {
		t.Errorf("injected = %v", out.Injected)
	}
	// Another env, named explicitly.
	out = h.run(t, map[string]any{"env": "prod", "command": []string{"printenv", "TOKEN"}})
	if out.Stdout != "[redacted:TOKEN]\n" || out.Env != "prod" {
		t.Errorf("prod: %+v", out)
	}
	// stdin and cwd.
	dir := t.TempDir()
	out = h.run(t, map[string]any{"command": []string{"sh", "-c", "pwd; cat"}, "cwd": dir, "stdin": "hello", "secrets": []string{"DB_PASSWORD"}})
	if want := dir + "\nhello"; out.Stdout != want {
		t.Errorf("stdout = %q, want %q", out.Stdout, want)
	}
	// A relative program is found from cwd, as a shell there would.
	if err := os.WriteFile(filepath.Join(dir, "hi.sh"), []byte("#!/bin/sh\necho hi from $(basename $PWD)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out = h.run(t, map[string]any{"command": []string{"./hi.sh"}, "cwd": dir, "secrets": []string{"TOKEN"}})
	if want := "hi from " + filepath.Base(dir) + "\n"; out.Stdout != want {
		t.Errorf("./hi.sh in cwd: stdout = %q, want %q", out.Stdout, want)
	}
	// secrets: [] injects none.
	out = h.run(t, map[string]any{"command": []string{"sh", "-c", `echo "${DB_PASSWORD:-none}"`}, "secrets": []string{}})
	if out.Stdout != "none\n" || len(out.Injected) != 0 {
		t.Errorf("secrets []: %+v", out)
	}
	// An env without secrets runs with a note.
	out = h.run(t, map[string]any{"app": "other", "env": "staging", "command": []string{"true"}})
	if len(out.Injected) != 0 || !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "no secrets injected") }) {
		t.Errorf("empty env: %+v", out)
	}
}

func TestRunCommandErrors(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev", AllowedCommands: []string{"sh", "printenv"}})
	for _, c := range []struct {
		name string
		args map[string]any
		want []string
	}{
		{
			"missing secret",
			map[string]any{"command": []string{"printenv"}, "secrets": []string{"TOKEN", "NOPE", "ALSO_NOPE"}},
			[]string{`no secret "NOPE", "ALSO_NOPE" in myapp/dev`, "hint: myapp/dev has: BINARY, DATABASE_URL, DB_PASSWORD"},
		},
		{
			"not a variable name",
			map[string]any{"command": []string{"printenv"}, "secrets": []string{"not-a-var"}},
			[]string{`secret "not-a-var" of myapp/dev is not a valid environment variable name`},
		},
		{
			"NUL in a value",
			map[string]any{"command": []string{"printenv"}, "secrets": []string{"BINARY"}},
			[]string{`secret "BINARY" of myapp/dev holds a NUL byte`},
		},
		{"not allowed", map[string]any{"command": []string{"python3", "-V"}}, []string{`run "python3": not an allowed command (allowed: sh, printenv)`}},
		{"path with allowlist", map[string]any{"command": []string{"/bin/sh", "-c", "true"}}, []string{"by bare name"}},
		{"empty command", map[string]any{"command": []string{}}, []string{"minItems"}},
		{"timeout too long", map[string]any{"command": []string{"sh"}, "timeout_seconds": 601}, []string{"maximum"}},
		{"bad cwd", map[string]any{"command": []string{"sh"}, "cwd": "/nonexistent/dir"}, []string{`cwd "/nonexistent/dir": no such file or directory`}},
		{"unknown parameter", map[string]any{"command": []string{"sh"}, "shell": true}, []string{"shell"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := h.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_command", Arguments: c.args})
			msg := ""
			switch {
			case err != nil:
				msg = err.Error()
			case res.IsError:
				msg = text(res)
			default:
				t.Fatalf("succeeded: %s", text(res))
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	// A program that is not there.
	h2 := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	res := h2.call(t, "run_command", map[string]any{"command": []string{"no-such-program-ov"}})
	if !res.IsError || !strings.Contains(text(res), `run "no-such-program-ov": program not found in PATH`) {
		t.Errorf("missing program: %s", text(res))
	}
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), src)
}

// A source error is passed through the sanitizer: control characters go
// (they could forge lines in a client's log), and the length is bounded.
func TestSourceErrorSanitized(t *testing.T) {
	src := testSource()
	src.getErr = errors.New("get secrets: agent said \x1b[31mno\x1b[0m\r\n" + strings.Repeat("x", 5000))
	h := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	res := h.call(t, "run_command", map[string]any{"command": []string{"true"}})
	msg := text(res)
	if !res.IsError || strings.ContainsAny(msg, "\x1b\r") || len(msg) > maxErrLen+10 || !strings.HasPrefix(msg, "get secrets: agent said [31mno[0m\n") {
		t.Errorf("sanitized error = %.100q (len %d)", msg, len(msg))
	}
	r := NewRedactor(map[string][]byte{"TOKEN": []byte(testToken)})
	defer r.Wipe()
	if got := sanitize("start: weird "+testToken, r); got != "start: weird [redacted:TOKEN]" {
		t.Errorf("sanitize = %q", got)
	}
}

func TestRunCommandExitCodeAndTruncation(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{DefaultApp: "myapp", DefaultEnv: "dev", MaxOutput: 1000})
	out := h.run(t, map[string]any{"command": []string{"sh", "-c", "echo out; echo err >&2; exit 7"}})
	if out.ExitCode != 7 || out.Stdout != "out\n" || out.Stderr != "err\n" || out.Signal != "" || out.TimedOut {
		t.Errorf("exit 7: %+v", out)
	}
	out = h.run(t, map[string]any{"command": []string{"sh", "-c", "kill -SEGV $$"}})
	if out.ExitCode != -1 || out.Signal != "SIGSEGV" {
		t.Errorf("killed by SIGSEGV: %+v", out)
	}
	// The value straddles the 1000-byte cut: it is replaced whole, not cut.
	out = h.run(t, map[string]any{"command": []string{"sh", "-c", `head -c 990 /dev/zero | tr '\0' x; printf '%s' "$TOKEN"; head -c 5000 /dev/zero | tr '\0' y`}})
	if want := strings.Repeat("x", 990) + "[redacted:TOKEN]"; out.Stdout != want {
		t.Errorf("truncated stdout = %q", out.Stdout)
	}
	if out.StdoutBytes != int64(990+len(testToken)+5000) {
		t.Errorf("stdout_bytes = %d", out.StdoutBytes)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "stdout truncated") }) {
		t.Errorf("no truncation note: %v", out.Notes)
	}
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), src)
}

func TestRunCommandTimeoutKillsProcessGroup(t *testing.T) {
	h := start(t, testSource(), Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	start := time.Now()
	// The grandchild (sleep) would outlive sh if only sh were killed.
	out := h.run(t, map[string]any{"command": []string{"sh", "-c", "sleep 30 & echo $!; wait"}, "timeout_seconds": 1, "secrets": []string{"TOKEN"}})
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v", el)
	}
	if !out.TimedOut || out.Signal == "" || !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "timed out after 1s") }) {
		t.Errorf("timeout: %+v", out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out.Stdout))
	if err != nil {
		t.Fatalf("stdout %q: %v", out.Stdout, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still running after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And a background process left behind by a command that exited.
	out = h.run(t, map[string]any{"command": []string{"sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"}, "secrets": []string{"TOKEN"}})
	if pid, err = strconv.Atoi(strings.TrimSpace(out.Stdout)); err != nil {
		t.Fatalf("stdout %q: %v", out.Stdout, err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background process %d outlived its command", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie waiting for a reaper does not).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: trust kill
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestRunCommandCancelled(t *testing.T) {
	h := start(t, testSource(), Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"command": []string{"sleep", "30"}}})
	if err == nil {
		t.Fatal("a cancelled call succeeded")
	}
	// The server must be free for the next call soon after.
	out := h.run(t, map[string]any{"command": []string{"echo", "next"}})
	if out.Stdout != "next\n" || time.Since(start) > 10*time.Second {
		t.Errorf("after cancel: %+v after %v", out, time.Since(start))
	}
}
