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

	"github.com/opaquevault/opaquevault/internal/localapi"
	ovnames "github.com/opaquevault/opaquevault/internal/names"
)

// memSource is a fixed in-memory Source: app → env → name → value. The
// agent itself is tested end to end in e2e_test.go.
type memSource struct {
	mu      sync.Mutex
	data    map[string]map[string]map[string]string
	getErr  error
	version map[string]uint64
}

func (m *memSource) Scopes(context.Context) ([]localapi.Scope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []localapi.Scope
	for _, app := range slices.Sorted(mapKeys(m.data)) {
		for _, env := range slices.Sorted(mapKeys(m.data[app])) {
			out = append(out, localapi.Scope{App: app, Env: env})
		}
	}
	return out, nil
}

func (m *memSource) Info(_ context.Context, app, env string) (*localapi.EnvInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[app][env]
	if !ok {
		return nil, withHint(fmt.Errorf("list secrets of %s/%s: not found", app, env), "check the names with list_apps")
	}
	in := &localapi.EnvInfo{Seq: 3, UpdatedAt: time.Unix(1700000000, 0)}
	for _, n := range slices.Sorted(mapKeys(e)) {
		in.Secrets = append(in.Secrets, localapi.SecretInfo{Name: n, Version: 1 + m.version[app+"/"+env+"/"+n]})
	}
	return in, nil
}

func (m *memSource) Get(_ context.Context, app, env string, names []string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
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

func (m *memSource) Generate(_ context.Context, app, env string, g *localapi.Generate) (*localapi.Generated, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.version == nil {
		m.version = map[string]uint64{}
	}
	created := false
	if m.data[app] == nil {
		m.data[app] = map[string]map[string]string{}
		created = true
	}
	if m.data[app][env] == nil {
		m.data[app][env] = map[string]string{}
		created = true
	}
	k := app + "/" + env + "/" + g.Name
	if _, ok := m.data[app][env][g.Name]; ok {
		m.version[k]++
	}
	m.data[app][env][g.Name] = "generated-" + strconv.Itoa(int(m.version[k]))
	return &localapi.Generated{Version: 1 + m.version[k], Created: created}, nil
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
	if opts.AllowCommands == nil {
		opts.AllowCommands = []string{"*"}
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
	if _, ok := args["secrets"]; !ok {
		args["secrets"] = []string{"DATABASE_URL", "DB_PASSWORD", "LONG_TOKEN", "PORT", "PRIVATE_KEY", "TOKEN"}
	}
	res := h.call(t, "run_with_secrets", args)
	if res.IsError {
		t.Fatalf("run_with_secrets %v failed: %s", args["command"], text(res))
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
	h := start(t, testSource(), Options{App: "myapp"})
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
		if len(tool.Description) < 40 {
			t.Errorf("%s: description %q", tool.Name, tool.Description)
		}
		schemas[tool.Name] = m
	}
	want := []string{"check_secrets", "list_apps", "list_envs", "list_secrets", "run_with_secrets", "set_secret_from_generator"}
	if got := slices.Sorted(mapKeys(schemas)); !slices.Equal(got, want) {
		t.Fatalf("tools = %v", got)
	}
	run := schemas["run_with_secrets"]
	props := run["properties"].(map[string]any)
	for _, p := range []string{"app", "env", "command", "secrets", "cwd", "timeout_s", "stdin"} {
		if props[p] == nil {
			t.Errorf("run_with_secrets has no %s parameter", p)
		}
	}
	timeout := props["timeout_s"].(map[string]any)
	if timeout["maximum"] != 600.0 || timeout["minimum"] != 1.0 || timeout["default"] != 60.0 {
		t.Errorf("timeout_s schema = %v", timeout)
	}
	if cmd := props["command"].(map[string]any); cmd["type"] != "array" || cmd["minItems"] != 1.0 {
		t.Errorf("command schema = %v", cmd)
	}
	// app is pinned, env is not: env, command and secrets are required.
	req := run["required"].([]any)
	for _, r := range []string{"command", "secrets", "env"} {
		if !slices.Contains(req, any(r)) {
			t.Errorf("required = %v, lacks %s", req, r)
		}
	}
	if slices.Contains(req, any("app")) {
		t.Errorf("required = %v holds the pinned app", req)
	}
	if d := props["app"].(map[string]any)["description"].(string); !strings.Contains(d, `"myapp"`) {
		t.Errorf("app description does not give the pin: %q", d)
	}
	gen := schemas["set_secret_from_generator"]["properties"].(map[string]any)["kind"].(map[string]any)
	if fmt.Sprint(gen["enum"]) != "[hex base64 alphanumeric uuid]" {
		t.Errorf("kind schema = %v", gen)
	}
	if c := schemas["check_secrets"]["properties"].(map[string]any)["names"].(map[string]any); c["type"] != "array" {
		t.Errorf("names schema = %v", c)
	}
	// The descriptions say honestly what redaction does and does not do.
	for _, tool := range res.Tools {
		if tool.Name == "run_with_secrets" && (!strings.Contains(tool.Description, "deliberately transforms") || !strings.Contains(tool.Description, "hex")) {
			t.Errorf("run_with_secrets description: %q", tool.Description)
		}
	}
}

func TestListSecrets(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{})
	res := h.call(t, "list_secrets", map[string]any{"app": "myapp", "env": "dev"})
	if res.IsError {
		t.Fatal(text(res))
	}
	var out secretsOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	want := []string{"BINARY", "DATABASE_URL", "DB_PASSWORD", "LONG_TOKEN", "PORT", "PRIVATE_KEY", "TOKEN", "not-a-var"}
	var names []string
	for _, x := range out.Secrets {
		names = append(names, x.Name)
		if x.Version != 1 {
			t.Errorf("%s: version %d", x.Name, x.Version)
		}
	}
	if !slices.Equal(names, want) || out.Count != len(want) || out.App != "myapp" || out.Env != "dev" || out.UpdatedAt != "2023-11-14T22:13:20Z" || out.Seq != 3 {
		t.Errorf("list_secrets = %+v", out)
	}
	// No pin: app is required, and the schema says so.
	res, err := h.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_secrets", Arguments: map[string]any{"env": "dev"}})
	if err == nil && !res.IsError {
		t.Error("list_secrets without app succeeded")
	}
	res = h.call(t, "list_secrets", map[string]any{"app": "nope", "env": "dev"})
	if !res.IsError || !strings.Contains(text(res), "nope/dev") || !strings.Contains(text(res), "hint: check the names") {
		t.Errorf("unknown app: %s", text(res))
	}
	// check_secrets
	res = h.call(t, "check_secrets", map[string]any{"app": "myapp", "env": "dev", "names": []string{"TOKEN", "STRIPE_KEY", "PORT", "TOKEN"}})
	var chk checkOut
	b, _ = json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &chk)
	if res.IsError || !slices.Equal(chk.Present, []string{"TOKEN", "PORT"}) || !slices.Equal(chk.Missing, []string{"STRIPE_KEY"}) || chk.AllPresent {
		t.Errorf("check_secrets = %+v %s", chk, text(res))
	}
	// Names no secret can have are invalid, with the rule, not missing.
	res = h.call(t, "check_secrets", map[string]any{"app": "myapp", "env": "dev", "names": []string{"TOKEN", ".X", "BAD NAME", "STRIPE_KEY", "-lead"}})
	chk = checkOut{}
	b, _ = json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &chk)
	if res.IsError || !slices.Equal(chk.Present, []string{"TOKEN"}) || !slices.Equal(chk.Missing, []string{"STRIPE_KEY"}) ||
		!slices.Equal(chk.Invalid, []string{".X", "BAD NAME", "-lead"}) || chk.Rule != ovnames.SecretRule || chk.AllPresent {
		t.Errorf("check_secrets with invalid names = %+v %s", chk, text(res))
	}
	// Only invalid names: none is missing, and not all are present.
	res = h.call(t, "check_secrets", map[string]any{"app": "myapp", "env": "dev", "names": []string{"BAD NAME"}})
	chk = checkOut{}
	b, _ = json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &chk)
	if res.IsError || len(chk.Missing) != 0 || !slices.Equal(chk.Invalid, []string{"BAD NAME"}) || chk.AllPresent {
		t.Errorf("check_secrets with one invalid name = %+v %s", chk, text(res))
	}
	// All valid and present: invalid is an empty list, and no rule.
	res = h.call(t, "check_secrets", map[string]any{"app": "myapp", "env": "dev", "names": []string{"TOKEN"}})
	if !strings.Contains(text(res), `"invalid":[]`) || strings.Contains(text(res), `"rule"`) {
		t.Errorf("check_secrets of a present name: %s", text(res))
	}
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), src)
}

func TestListApps(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{})
	res := h.call(t, "list_apps", nil)
	var out appsOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	if res.IsError || len(out.Apps) != 2 || out.Apps[0].App != "myapp" || !slices.Equal(out.Apps[0].Envs, []string{"dev", "prod"}) {
		t.Errorf("list_apps = %+v %s", out, text(res))
	}
	res = h.call(t, "list_envs", map[string]any{"app": "other"})
	var envs envsOut
	b, _ = json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &envs)
	if res.IsError || !slices.Equal(envs.Envs, []string{"staging"}) {
		t.Errorf("list_envs = %+v %s", envs, text(res))
	}
	res = h.call(t, "list_envs", map[string]any{"app": "nope"})
	if !res.IsError || !strings.Contains(text(res), `no app "nope"`) || !strings.Contains(text(res), "the apps are: myapp, other") {
		t.Errorf("list_envs of an unknown app: %s", text(res))
	}

	// Pinned to myapp/dev: only that scope is listed, and no other is served.
	p := start(t, src, Options{App: "myapp", Env: "dev"})
	res = p.call(t, "list_apps", nil)
	b, _ = json.Marshal(res.StructuredContent)
	out = appsOut{}
	_ = json.Unmarshal(b, &out)
	if len(out.Apps) != 1 || !slices.Equal(out.Apps[0].Envs, []string{"dev"}) {
		t.Errorf("pinned list_apps = %+v", out)
	}
	for _, args := range []map[string]any{{"app": "other", "env": "staging"}, {"env": "prod"}} {
		res = p.call(t, "list_secrets", args)
		if !res.IsError || !strings.Contains(text(res), "this server is limited to") {
			t.Errorf("pinned list_secrets %v: %s", args, text(res))
		}
	}
}

func TestSetSecretFromGenerator(t *testing.T) {
	src := testSource()
	ro := start(t, src, Options{App: "myapp", Env: "dev"})
	res := ro.call(t, "set_secret_from_generator", map[string]any{"name": "SESSION_KEY", "kind": "hex", "length": 32})
	if !res.IsError || !strings.Contains(text(res), "writes are off") || !strings.Contains(text(res), "--allow-writes") {
		t.Errorf("without --allow-writes: %s", text(res))
	}
	h := start(t, src, Options{App: "myapp", AllowWrites: true})
	res = h.call(t, "set_secret_from_generator", map[string]any{"env": "dev", "name": "SESSION_KEY", "kind": "hex", "length": 32})
	var out genOut
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	if res.IsError || out.Version != 1 || out.Name != "SESSION_KEY" {
		t.Errorf("create: %+v %s", out, text(res))
	}
	res = h.call(t, "set_secret_from_generator", map[string]any{"env": "dev", "name": "SESSION_KEY", "kind": "uuid"})
	b, _ = json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	if res.IsError || out.Version != 2 {
		t.Errorf("rotate: %+v %s", out, text(res))
	}
	for _, args := range []map[string]any{
		{"env": "dev", "name": "bad name", "kind": "hex"},
		{"env": "dev", "name": "-lead", "kind": "hex"},
		{"env": "dev", "name": "X", "kind": "rot13"},
		{"app": "other", "env": "dev", "name": "X", "kind": "hex"},
	} {
		res, err := h.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "set_secret_from_generator", Arguments: args})
		if err == nil && !res.IsError {
			t.Errorf("%v succeeded", args)
		}
	}
	if !bytes.Contains(h.log.Bytes(), []byte("tool=set_secret_from_generator")) || !bytes.Contains(h.log.Bytes(), []byte("names=SESSION_KEY")) {
		t.Errorf("the call was not logged:\n%s", h.log.Bytes())
	}
}

func TestRunCommandRedacts(t *testing.T) {
	// The interpreter itself, not a pyenv shim that takes half a second.
	python, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skip("python3 not found")
	}
	src := testSource()
	h := start(t, src, Options{App: "myapp", Env: "dev"})
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
		{"xxd of a long token", []string{"sh", "-c", `printf '%s' "$LONG_TOKEN" | xxd`}, "LONG_TOKEN"},
		{"od -c of a long token", []string{"sh", "-c", `printf '%s' "$LONG_TOKEN" | od -c`}, "LONG_TOKEN"},
		{"hexdump -C of a long token", []string{"sh", "-c", `printf '%s' "$LONG_TOKEN" | hexdump -C`}, "LONG_TOKEN"},
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
		t.Errorf("injected = %v", out.Injected)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "PORT shorter than 4 bytes") }) {
		t.Errorf("no note about the short value: %v", out.Notes)
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
	h := start(t, src, Options{App: "myapp", ChildEnv: func() []string {
		return []string{"PATH=" + os.Getenv("PATH"), "INHERITED=yes", "TOKEN=shadowed", "DBUS_SESSION_BUS_ADDRESS=unix:abstract=/tmp/x"}
	}})
	out := h.run(t, map[string]any{"env": "dev", "command": []string{"sh", "-c", `echo "inherited=$INHERITED pw=${DB_PASSWORD:-unset} token=$TOKEN bus=${DBUS_SESSION_BUS_ADDRESS:-none}"`}, "secrets": []string{"TOKEN"}})
	if want := "inherited=yes pw=unset token=[redacted:TOKEN] bus=none\n"; out.Stdout != want {
		t.Errorf("stdout = %q, want %q", out.Stdout, want)
	}
	if !slices.Equal(out.Injected, []string{"TOKEN"}) {
		t.Errorf("injected = %v", out.Injected)
	}
	// Another env, named explicitly.
	out = h.run(t, map[string]any{"env": "prod", "command": []string{"printenv", "TOKEN"}, "secrets": []string{"TOKEN"}})
	if out.Stdout != "[redacted:TOKEN]\n" || out.Env != "prod" {
		t.Errorf("prod: %+v", out)
	}
	// stdin and cwd.
	dir := t.TempDir()
	out = h.run(t, map[string]any{"env": "dev", "command": []string{"sh", "-c", "pwd; cat"}, "cwd": dir, "stdin": "hello", "secrets": []string{"DB_PASSWORD"}})
	if want := dir + "\nhello"; out.Stdout != want {
		t.Errorf("stdout = %q, want %q", out.Stdout, want)
	}
	// A relative program is found from cwd, as a shell there would.
	if err := os.WriteFile(filepath.Join(dir, "hi.sh"), []byte("#!/bin/sh\necho hi from $(basename $PWD)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out = h.run(t, map[string]any{"env": "dev", "command": []string{"./hi.sh"}, "cwd": dir, "secrets": []string{"TOKEN"}})
	if want := "hi from " + filepath.Base(dir) + "\n"; out.Stdout != want {
		t.Errorf("./hi.sh in cwd: stdout = %q, want %q", out.Stdout, want)
	}
	// A name with "-" follows the rule `ov secret import` and `ov run` follow (internal/names): it is
	// passed through execve, as env(1) does, and redacted on the way back.
	out = h.run(t, map[string]any{"env": "dev", "command": []string{"printenv"}, "secrets": []string{"not-a-var"}})
	if !slices.Equal(out.Injected, []string{"not-a-var"}) || !strings.Contains(out.Stdout, "not-a-var=[redacted") || strings.Contains(out.Stdout, "unusable-name-value") {
		t.Errorf("not-a-var: injected %v, stdout %q", out.Injected, out.Stdout)
	}
	// secrets: [] injects none.
	out = h.run(t, map[string]any{"env": "dev", "command": []string{"sh", "-c", `echo "${DB_PASSWORD:-none}"`}, "secrets": []string{}})
	if out.Stdout != "none\n" || len(out.Injected) != 0 {
		t.Errorf("secrets []: %+v", out)
	}
}

func TestRunCommandErrors(t *testing.T) {
	src := testSource()
	h := start(t, src, Options{App: "myapp", Env: "dev", AllowCommands: []string{"sh -c *", "printenv*", "sh"}})
	for _, c := range []struct {
		name string
		args map[string]any
		want []string
	}{
		{
			"missing secret",
			map[string]any{"command": []string{"printenv"}, "secrets": []string{"TOKEN", "NOPE", "ALSO_NOPE"}},
			[]string{`get secrets of myapp/dev: not found: "NOPE"`},
		},
		{
			"not a secret name",
			map[string]any{"command": []string{"printenv"}, "secrets": []string{"not a var", "-x"}},
			[]string{`"not a var", "-x" not a valid secret name`},
		},
		{
			"NUL in a value",
			map[string]any{"command": []string{"printenv"}, "secrets": []string{"BINARY"}},
			[]string{`secret "BINARY" of myapp/dev holds a NUL byte`},
		},
		{"not allowed", map[string]any{"command": []string{"python3", "-V"}, "secrets": []string{}}, []string{`run "python3 -V": not an allowed command`, `"sh -c *"`}},
		{"no secrets argument", map[string]any{"command": []string{"printenv"}}, []string{"secrets"}},
		{"empty command", map[string]any{"command": []string{}, "secrets": []string{}}, []string{"minItems"}},
		{"timeout too long", map[string]any{"command": []string{"sh"}, "secrets": []string{}, "timeout_s": 601}, []string{"maximum"}},
		{"bad cwd", map[string]any{"command": []string{"sh"}, "secrets": []string{}, "cwd": "/nonexistent/dir"}, []string{`cwd "/nonexistent/dir": no such file or directory`}},
		{"unknown parameter", map[string]any{"command": []string{"sh"}, "secrets": []string{}, "shell": true}, []string{"shell"}},
		{"other env", map[string]any{"env": "prod", "command": []string{"sh"}, "secrets": []string{}}, []string{"limited to myapp/dev"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := h.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_with_secrets", Arguments: c.args})
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
	// Without --allow-command: any program but shells and interpreters.
	h2 := start(t, src, Options{App: "myapp", Env: "dev", AllowCommands: []string{}})
	for _, argv := range [][]string{{"sh", "-c", "printenv TOKEN"}, {"/bin/bash", "-c", "true"}, {"python3.11", "-c", "1"}, {"env", "sh"}} {
		res := h2.call(t, "run_with_secrets", map[string]any{"command": argv, "secrets": []string{"TOKEN"}})
		if !res.IsError || !strings.Contains(text(res), "runs other programs from text") || !strings.Contains(text(res), "--allow-command") {
			t.Errorf("%v: %s", argv, text(res))
		}
	}
	res := h2.call(t, "run_with_secrets", map[string]any{"command": []string{"no-such-program-ov"}, "secrets": []string{}})
	if !res.IsError || !strings.Contains(text(res), `run "no-such-program-ov": program not found in PATH`) {
		t.Errorf("missing program: %s", text(res))
	}
	out := h2.run(t, map[string]any{"command": []string{"printenv", "TOKEN"}, "secrets": []string{"TOKEN"}})
	if out.Stdout != "[redacted:TOKEN]\n" {
		t.Errorf("printenv without --allow-command: %+v", out)
	}
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), src)
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"npm test", "npm test", true}, {"npm test", "npm test --x", false}, {"npm *", "npm run a/b c", true},
		{"go test *", "go test ./...", true}, {"go test *", "go build", false}, {"*", "", true}, {"a?c", "abc", true},
		{"a?c", "ac", false}, {"*x*y", "axbxy", true}, {"*x*y", "axbx", false}, {"sh -c *", "sh -c 'echo hi'", true},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// A source error is passed through the sanitizer: control characters go
// (they could forge lines in a client's log), and the length is bounded.
func TestSourceErrorSanitized(t *testing.T) {
	src := testSource()
	src.getErr = errors.New("get secrets: agent said \x1b[31mno\x1b[0m\r\n" + strings.Repeat("x", 5000))
	h := start(t, src, Options{App: "myapp", Env: "dev"})
	res := h.call(t, "run_with_secrets", map[string]any{"command": []string{"true"}, "secrets": []string{"TOKEN"}})
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
	h := start(t, src, Options{App: "myapp", Env: "dev", MaxOutput: 1000})
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
	h := start(t, testSource(), Options{App: "myapp", Env: "dev"})
	start := time.Now()
	// The grandchild (sleep) would outlive sh if only sh were killed. The
	// command runs in its own PID namespace: look for it by its unique
	// argument among this machine's processes.
	out := h.run(t, map[string]any{"command": []string{"sh", "-c", "sleep 30.0101 & wait"}, "timeout_s": 1, "secrets": []string{"TOKEN"}})
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v", el)
	}
	if !out.TimedOut || out.Signal == "" || !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "timed out after 1s") }) {
		t.Errorf("timeout: %+v", out)
	}
	waitGone(t, "30.0101")
	// And a background process left behind by a command that exited.
	h.run(t, map[string]any{"command": []string{"sh", "-c", "setsid sleep 30.0202 >/dev/null 2>&1 & echo started"}, "secrets": []string{"TOKEN"}})
	waitGone(t, "30.0202")
}

// waitGone waits until no process has arg in its command line.
func waitGone(t *testing.T, arg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := 0
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if slices.Contains(strings.Split(string(b), "\x00"), arg) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				if alive(pid) {
					found = pid
				}
			}
		}
		if found == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d (%s) still running after its command ended", found, arg)
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
	h := start(t, testSource(), Options{App: "myapp", Env: "dev"})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_with_secrets", Arguments: map[string]any{"command": []string{"sleep", "30"}, "secrets": []string{"TOKEN"}}})
	if err == nil {
		t.Fatal("a cancelled call succeeded")
	}
	// The server must be free for the next call soon after.
	out := h.run(t, map[string]any{"command": []string{"echo", "next"}})
	if out.Stdout != "next\n" || time.Since(start) > 10*time.Second {
		t.Errorf("after cancel: %+v after %v", out, time.Since(start))
	}
}
