// SPDX-License-Identifier: Apache-2.0

package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/cli"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/mcp"
	"github.com/opaquevault/opaquevault/internal/mcp/sandbox"
	"github.com/opaquevault/opaquevault/internal/mcpcmd"
)

// The test binary is also ov, ov-mcp, ov-server and a probe (by the name it is
// started as), the sandbox helper, and the memSource server of e2e_test.go.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		os.Exit(sandbox.HelperMain(os.Args[2:]))
	}
	switch filepath.Base(os.Args[0]) {
	case "ov":
		cli.UseTestKDF()
		os.Exit(cli.Main(context.Background(), os.Args[1:], cli.OSStdio()))
	case "ov-mcp":
		cli.UseTestKDF()
		os.Exit(mcpcmd.Main(context.Background(), os.Args[1:], cli.OSStdio()))
	case "ov-server":
		os.Exit(server.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	case "ov-probe":
		os.Exit(probe(os.Args[1:]))
	}
	if os.Getenv(mcp.HelperEnv) == "serve" {
		os.Exit(mcp.HelperServe())
	}
	code := m.Run()
	if fx != nil && os.Getenv("OV_E2E_KEEP") == "" {
		fx.close()
	}
	os.Exit(code)
}

// probe tries each target: a unix socket to connect to, a file to read, a
// directory to list, or run:SOCKET, an agent socket to send RUN for
// myapp/dev (every secret) to, printing "VALUES n" when it answers n values.
// One line per target: "REACHED path" or "blocked path".
func probe(targets []string) int {
	for _, t := range targets {
		if sock, ok := strings.CutPrefix(t, "run:"); ok {
			fmt.Println(probeRun(sock), t)
			continue
		}
		reached := false
		if c, err := net.DialTimeout("unix", t, time.Second); err == nil {
			c.Close()
			reached = true
		}
		if b, err := os.ReadFile(t); err == nil && len(b) > 0 {
			reached = true
		}
		if es, err := os.ReadDir(t); err == nil && len(es) > 0 {
			reached = true
		}
		fmt.Printf("%s %s\n", map[bool]string{true: "REACHED", false: "blocked"}[reached], t)
	}
	return 0
}

// probeRun sends RUN on the socket itself (no rendezvous or directory
// checks: an attacker would not make them).
func probeRun(sock string) string {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "blocked"
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	f, _ := localapi.MarshalRequest(&localapi.Request{Op: localapi.OpRun, App: "myapp", Env: "dev"})
	if _, err := c.Write(f); err != nil {
		return "REACHED"
	}
	p, err := localapi.ReadFrame(c)
	if err != nil {
		return "REACHED"
	}
	r, err := localapi.ParseResponse(localapi.OpRun, p)
	if err != nil || r.Err != nil || len(r.Secrets) == 0 {
		return "REACHED"
	}
	defer r.Wipe()
	return fmt.Sprintf("VALUES %d REACHED", len(r.Secrets))
}

// ---- the fixture: a real ov-server, an account, secrets, a running agent ----

type fixture struct {
	dir, bin, home, rt string
	uid, gid           int // the user everything runs as: nobody when the tests run as root
	env                []string
	pw, keyFile        string
	server             *exec.Cmd
}

var (
	fx      *fixture
	fxErr   error
	fxOnce  sync.Once
	jwt     = longToken()
	devEnv  = "TOKEN=tok-5f3c9a1e7b2d4c6f8a0e\nDATABASE_URL=postgres://app:Pa55w0rd-e2e-x7q@127.0.0.1:5432/app?sslmode=disable\nJWT=" + jwt + "\nPORT=8080\n"
	prodEnv = "TOKEN=prod-tok-0b9d8c7e6f5a\n"
)

// longToken is a 377-byte single-line token, as the review leaked through xxd.
func longToken() string {
	var b strings.Builder
	b.WriteString("eyJhbGciOiJIUzI1NiJ9.")
	h := sha256.Sum256([]byte("seed"))
	for b.Len() < 377 {
		h = sha256.Sum256(h[:])
		b.WriteString(base64.RawURLEncoding.EncodeToString(h[:]))
	}
	return b.String()[:377]
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		t.Skip("no user namespaces on this kernel")
	}
	fxOnce.Do(func() { fx, fxErr = newFixture() })
	if fxErr != nil {
		t.Fatalf("fixture: %v", fxErr)
	}
	return fx
}

func newFixture() (_ *fixture, err error) {
	// Secret files must not sit under a world-writable directory such as /tmp: as root, /run
	// (which the fixture's user, nobody, can traverse); otherwise the user's cache directory.
	base := "/run"
	if os.Getuid() != 0 {
		if base, err = os.UserCacheDir(); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(base, 0o700); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(base, "ov-mcp-e2e-")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, bin: filepath.Join(dir, "bin"), home: filepath.Join(dir, "home"), rt: filepath.Join(dir, "rt"),
		uid: os.Getuid(), gid: os.Getgid()}
	if f.uid == 0 {
		f.uid, f.gid = 65534, 65534
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return f, err
	}
	for _, d := range []string{f.bin, f.home, f.rt, filepath.Join(dir, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return f, err
		}
	}
	for _, d := range []string{f.home, f.rt, filepath.Join(dir, "out")} {
		if err := os.Chown(d, f.uid, f.gid); err != nil {
			return f, err
		}
	}
	_ = os.Chmod(f.rt, 0o700)
	_ = os.Chmod(f.home, 0o700)
	// A copy of this binary that the user can run, under the names it answers to.
	self, err := os.Executable()
	if err != nil {
		return f, err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return f, err
	}
	// Named ov itself: `ov agent start` re-executes its own (resolved) path.
	exe := filepath.Join(f.bin, "ov")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		return f, err
	}
	// ov-mcp next to ov, as the packages ship it: `ov mcp serve` execs it.
	for _, n := range []string{"ov-server", "ov-probe", "ov-mcp"} {
		if err := os.Symlink("ov", filepath.Join(f.bin, n)); err != nil {
			return f, err
		}
	}
	f.env = []string{
		"PATH=" + f.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + f.home, "XDG_CONFIG_HOME=" + filepath.Join(f.home, ".config"), "XDG_STATE_HOME=" + filepath.Join(f.home, ".local", "state"),
		"XDG_CACHE_HOME=" + filepath.Join(f.home, ".cache"), "XDG_RUNTIME_DIR=" + f.rt, "LANG=C.UTF-8",
	}

	// ov-server on loopback, SQLite in the work dir.
	srv := exec.Command(filepath.Join(f.bin, "ov-server"), "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "ov-server.db"))
	srv.Env = f.env
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		return f, err
	}
	f.server = srv
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				urls <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case u := <-urls:
		f.env = append(f.env, "OV_SERVER="+u)
	case <-time.After(30 * time.Second):
		return f, errors.New("ov-server did not start")
	}

	f.pw = filepath.Join(f.home, "pw")
	files := map[string]string{f.pw: "correct horse battery staple e2e\n", filepath.Join(f.home, "dev.env"): devEnv, filepath.Join(f.home, "prod.env"): prodEnv}
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			return f, err
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			return f, err
		}
	}
	f.keyFile = filepath.Join(f.home, "myapp.key")
	for _, args := range [][]string{
		{"auth", "register", "--email", "e2e@example.com", "--password-file", f.pw},
		{"secret", "import", filepath.Join(f.home, "dev.env"), "--app", "myapp", "--env", "dev", "--password-file", f.pw},
		{"secret", "import", filepath.Join(f.home, "prod.env"), "--app", "myapp", "--env", "prod", "--password-file", f.pw},
		{"auth", "derive-machine-key", "--app", "myapp", "--env", "dev", "--out", f.keyFile, "--password-file", f.pw},
		{"agent", "start", "--password-file", f.pw, "--rate-per-minute", "6000"},
	} {
		if out, err := f.ov(args...).CombinedOutput(); err != nil {
			return f, fmt.Errorf("ov %s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
	}
	return f, nil
}

// asUser makes cmd run as the fixture's user with its environment.
func (f *fixture) asUser(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = append(slices.Clone(f.env), cmd.Env...)
	cmd.Dir = f.home
	if os.Getuid() != f.uid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(f.uid), Gid: uint32(f.gid)}}
	}
	return cmd
}

func (f *fixture) ov(args ...string) *exec.Cmd {
	return f.asUser(exec.Command(filepath.Join(f.bin, "ov"), args...))
}

func (f *fixture) close() {
	_ = f.ov("agent", "stop").Run()
	// Whatever is left of what this fixture started (it all names the work dir).
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(f.dir)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	if f.server != nil {
		_ = f.server.Process.Signal(syscall.SIGTERM)
		_ = f.server.Wait()
	}
	_ = os.RemoveAll(f.dir)
}

// values returns every secret value of the account's envs, read outside
// any sandbox, to scan what the clients got for them.
func (f *fixture) values(t *testing.T) map[string]string {
	t.Helper()
	all := map[string]string{}
	for _, env := range []string{"dev", "prod"} {
		out, err := f.ov("secret", "export", "--app", "myapp", "--env", env, "--format", "json", "--password-file", f.pw).Output()
		if err != nil {
			t.Fatalf("ov secret export: %v", err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("export: %v", err)
		}
		for k, v := range m {
			all[env+"/"+k] = v
		}
	}
	if len(all) < 5 {
		t.Fatalf("only %d values exported", len(all))
	}
	return all
}

// assertNoValue fails if b holds any value, in raw, base64, base64url, hex,
// URL-encoded or JSON-escaped form, or any 12 bytes of one.
func assertNoValue(t *testing.T, what string, b []byte, values map[string]string) {
	t.Helper()
	for name, v := range values {
		if len(v) < 4 {
			continue
		}
		for form, s := range mcp.Forms(v) {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %s as %s", what, name, form)
			}
		}
		for i := 0; i+12 <= len(v); i++ {
			if bytes.Contains(b, []byte(v[i:i+12])) {
				t.Errorf("%s holds %q, part of %s", what, v[i:i+12], name)
				break
			}
		}
	}
}

// ---- clients ----

// result is a tool result as either client reports it.
type result struct {
	IsError           bool           `json:"isError"`
	Content           []content      `json:"content"`
	StructuredContent map[string]any `json:"structuredContent"`
	Err               string         `json:"error"` // a protocol-level failure
}

type content struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (r result) text() string {
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	return b.String() + r.Err
}

func (r result) failed() bool { return r.IsError || r.Err != "" }

type toolCall struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
	check     func(t *testing.T, r result)
}

// session is what a client saw: the tools and one result per call.
type session struct {
	tools   []string
	results []result
	wire    []byte // everything the client received from the server
	stderr  []byte // the server's log
}

// serveArgs are the ov mcp serve flags of the scenario.
var serveArgs = []string{"mcp", "serve", "--allow-writes", "--allow-command", "*"}

// goClient runs the calls with the Go SDK's client over the stdio of cmd.
func goClient(t *testing.T, cmd *exec.Cmd, calls []toolCall) *session {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wire syncBuf
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "ov-e2e-go", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.IOTransport{Reader: io.NopCloser(io.TeeReader(stdout, &wire)), Writer: stdin}, nil)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("connect: %v\n%s", err, stderr.Bytes())
	}
	s := &session{}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		s.tools = append(s.tools, tool.Name)
	}
	for _, c := range calls {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: c.Name, Arguments: c.Arguments})
		var r result
		if err != nil {
			r.Err = err.Error()
		} else {
			b, _ := json.Marshal(res)
			_ = json.Unmarshal(b, &r)
		}
		s.results = append(s.results, r)
	}
	cs.Close()
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("ov mcp serve exited with %v\n%s", err, stderr.Bytes())
	}
	s.wire, s.stderr = wire.Bytes(), stderr.Bytes()
	return s
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// nodeClient runs the calls with the TypeScript SDK's client:
// `node client.mjs -- ov mcp serve ...`, whose own command line holds "mcp serve".
func nodeClient(t *testing.T, f *fixture, calls []toolCall) *session {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: skipping the client on the TypeScript SDK")
	}
	src, _ := filepath.Abs(filepath.Join("testdata", "node"))
	if _, err := os.Stat(filepath.Join(src, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Skip("@modelcontextprotocol/sdk not installed: run `npm ci` in internal/mcp/testdata/node")
	}
	b, _ := json.Marshal(calls)
	cmd := f.asUser(exec.Command(node, append([]string{filepath.Join(src, "client.mjs"), "--", filepath.Join(f.bin, "ov")}, serveArgs...)...))
	cmd.Env = append(cmd.Env, "OV_E2E_CALLS="+string(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, stderr.Bytes())
	}
	var got struct {
		Server  struct{ Name string }
		Tools   []struct{ Name string }
		Results []result
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output: %v\n%s", err, out)
	}
	if got.Server.Name != "opaquevault" {
		t.Errorf("server = %+v", got.Server)
	}
	s := &session{results: got.Results, wire: out, stderr: stderr.Bytes()}
	for _, tool := range got.Tools {
		s.tools = append(s.tools, tool.Name)
	}
	return s
}

// ---- the scenario: every tool, every error path ----

func structured[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	b, _ := json.Marshal(r.StructuredContent)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	return v
}

type runResult struct {
	ExitCode int      `json:"exit_code"`
	TimedOut bool     `json:"timed_out"`
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr"`
	Injected []string `json:"injected"`
}

func ok(t *testing.T, r result) {
	t.Helper()
	if r.failed() {
		t.Fatalf("failed: %s", r.text())
	}
}

func fails(want ...string) func(*testing.T, result) {
	return func(t *testing.T, r result) {
		t.Helper()
		if !r.failed() {
			t.Fatalf("succeeded: %s", r.text())
		}
		for _, w := range want {
			if !strings.Contains(r.text(), w) {
				t.Errorf("error %q lacks %q", r.text(), w)
			}
		}
	}
}

func run(stdout string, exit int) func(*testing.T, result) {
	return func(t *testing.T, r result) {
		t.Helper()
		ok(t, r)
		o := structured[runResult](t, r)
		if o.Stdout != stdout || o.ExitCode != exit {
			t.Errorf("run = %+v, want stdout %q exit %d", o, stdout, exit)
		}
	}
}

func scenario(f *fixture, tag string) []toolCall {
	dev := func(m map[string]any) map[string]any {
		m["app"], m["env"] = "myapp", "dev"
		return m
	}
	newKey := "NEW_KEY_" + tag
	out := filepath.Join(f.dir, "out")
	encodings := `printf %s "$JWT" | xxd; printf %s "$JWT" | od -c; printf %s "$JWT" | hexdump -C; printf %s "$JWT" | base64;` +
		` printf %s "$JWT" | basenc --base64url; printf %s "$DATABASE_URL" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g'; echo;` +
		` printf '{"u":"%s"}\n' "$(printf %s "$DATABASE_URL" | sed 's|/|\\/|g')"; printf %s "$TOKEN" | xxd -p; env`
	return []toolCall{
		{Name: "list_apps", Arguments: map[string]any{}, check: func(t *testing.T, r result) {
			ok(t, r)
			if got := fmt.Sprint(r.StructuredContent["apps"]); !strings.Contains(got, "map[app:myapp envs:[dev prod]]") {
				t.Errorf("apps = %s", got)
			}
		}},
		{Name: "list_envs", Arguments: map[string]any{"app": "myapp"}, check: func(t *testing.T, r result) {
			ok(t, r)
			if got := fmt.Sprint(r.StructuredContent["envs"]); got != "[dev prod]" {
				t.Errorf("envs = %s", got)
			}
		}},
		{Name: "list_envs", Arguments: map[string]any{"app": "nope"}, check: fails(`no app "nope"`, "the apps are: myapp")},
		{Name: "list_secrets", Arguments: dev(map[string]any{}), check: func(t *testing.T, r result) {
			ok(t, r)
			if got := fmt.Sprint(r.StructuredContent["secrets"]); !strings.Contains(got, "map[name:JWT version:1]") || !strings.Contains(got, "map[name:TOKEN version:1]") {
				t.Errorf("secrets = %s", got)
			}
			if u, _ := r.StructuredContent["updated_at"].(string); !regexp.MustCompile(`^20\d\d-`).MatchString(u) {
				t.Errorf("updated_at = %q", u)
			}
		}},
		{Name: "list_secrets", Arguments: map[string]any{"app": "myapp", "env": "nope"}, check: fails("myapp/nope", "hint:")},
		{Name: "list_secrets", Arguments: map[string]any{"app": "myapp"}, check: fails("env")},
		{Name: "check_secrets", Arguments: dev(map[string]any{"names": []string{"TOKEN", "STRIPE_KEY", "JWT"}}), check: func(t *testing.T, r result) {
			ok(t, r)
			if fmt.Sprint(r.StructuredContent["present"]) != "[TOKEN JWT]" || fmt.Sprint(r.StructuredContent["missing"]) != "[STRIPE_KEY]" {
				t.Errorf("check = %v", r.StructuredContent)
			}
		}},
		{Name: "check_secrets", Arguments: dev(map[string]any{"names": []string{}}), check: fails()},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{"TOKEN"}, "command": []string{"printenv", "TOKEN"}}),
			check: run("[redacted:TOKEN]\n", 0)},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{"JWT", "DATABASE_URL", "TOKEN", "PORT"}, "command": []string{"sh", "-c", encodings}}),
			check: func(t *testing.T, r result) {
				ok(t, r)
				o := structured[runResult](t, r)
				for _, w := range []string{"[redacted:JWT]", "[redacted:DATABASE_URL]", "[redacted:TOKEN]"} {
					if !strings.Contains(o.Stdout, w) {
						t.Errorf("no %s in %q", w, o.Stdout)
					}
				}
			}},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{"TOKEN"}, "command": []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}),
			check: func(t *testing.T, r result) {
				ok(t, r)
				if o := structured[runResult](t, r); o.ExitCode != 3 || o.Stdout != "out\n" || o.Stderr != "err\n" {
					t.Errorf("exit 3: %+v", o)
				}
			}},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{"TOKEN", "NOPE"}, "command": []string{"true"}}), check: fails("NOPE", "not found")},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{}, "command": []string{"no-such-program-e2e"}}), check: fails("program not found in PATH")},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{}, "command": []string{"true"}, "timeout_s": 0.5}), check: fails()},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{"TOKEN"}, "command": []string{"sleep", "20"}, "timeout_s": 1}),
			check: func(t *testing.T, r result) {
				ok(t, r)
				if o := structured[runResult](t, r); !o.TimedOut {
					t.Errorf("not timed out: %+v", o)
				}
			}},
		{Name: "run_with_secrets", Arguments: map[string]any{"app": "myapp", "env": "prod", "secrets": []string{"TOKEN"}, "command": []string{"printenv", "TOKEN"}},
			check: run("[redacted:TOKEN]\n", 0)},
		// ov itself, as a command, gets nothing: it cannot find the agent, its config or its keys.
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{}, "command": []string{"sh", "-c",
			"ov agent status; echo rc=$?; ov secret get TOKEN --app myapp --env dev; echo rc=$?; ov run --app myapp --env dev -- printenv TOKEN; echo rc=$?;" +
				" ov secret list --app myapp --env dev; echo rc=$?; ov auth status; echo rc=$?"}}),
			check: func(t *testing.T, r result) {
				ok(t, r)
				o := structured[runResult](t, r)
				if strings.Contains(o.Stdout+o.Stderr, "[redacted") || strings.Contains(o.Stdout, "rc=0") || strings.Count(o.Stdout, "rc=") != 5 {
					t.Errorf("ov inside the sandbox:\n%s\n%s", o.Stdout, o.Stderr)
				}
			}},
		// Fork, re-parent, double-fork into a new session, then try the agent's socket and files.
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{"TOKEN"}, "command": []string{"sh", "-c", fmt.Sprintf(
			`( setsid sh -c 'ov-probe %[1]s run:%[1]s %[2]s %[3]s %[4]s /etc/ov/agent.socket > %[5]s.tmp; ov agent status >> %[5]s.tmp 2>&1; mv %[5]s.tmp %[5]s' & );`+
				` i=0; while [ ! -e %[5]s ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat %[5]s`,
			filepath.Join(f.rt, "ov", "agent.sock"), filepath.Join(f.home, ".config", "ov", "config"), filepath.Join(f.home, ".local", "state", "ov"),
			filepath.Join(f.home, ".cache", "ov"), filepath.Join(out, "probe-"+tag))}}),
			check: func(t *testing.T, r result) {
				ok(t, r)
				o := structured[runResult](t, r)
				// run:SOCKET: RUN, the one request that answers every value, cannot be sent either.
				if strings.Count(o.Stdout, "blocked ") != 6 || strings.Contains(o.Stdout, "VALUES") || strings.Contains(o.Stdout, "REACHED "+filepath.Join(f.rt)) || strings.Contains(o.Stdout, "REACHED "+filepath.Join(f.home, ".")) {
					t.Errorf("the double-forked probe:\n%s", o.Stdout)
				}
			}},
		{Name: "set_secret_from_generator", Arguments: dev(map[string]any{"name": newKey, "kind": "hex", "length": 32}), check: func(t *testing.T, r result) {
			ok(t, r)
			if v := r.StructuredContent["version"]; v != 1.0 {
				t.Errorf("version = %v", v)
			}
		}},
		{Name: "set_secret_from_generator", Arguments: dev(map[string]any{"name": newKey, "kind": "uuid"}), check: func(t *testing.T, r result) {
			ok(t, r)
			if v := r.StructuredContent["version"]; v != 2.0 {
				t.Errorf("version = %v", v)
			}
		}},
		{Name: "set_secret_from_generator", Arguments: dev(map[string]any{"name": newKey, "kind": "hex", "length": 4}), check: fails("16 to 512")},
		{Name: "set_secret_from_generator", Arguments: dev(map[string]any{"name": newKey, "kind": "rot13"}), check: fails()},
		{Name: "set_secret_from_generator", Arguments: map[string]any{"app": "newapp-" + strings.ToLower(tag), "env": "ci", "name": "API_KEY", "kind": "alphanumeric", "length": 40},
			check: func(t *testing.T, r result) {
				ok(t, r)
				if r.StructuredContent["env_created"] != true {
					t.Errorf("not created: %v", r.StructuredContent)
				}
			}},
		{Name: "check_secrets", Arguments: dev(map[string]any{"names": []string{newKey}}), check: func(t *testing.T, r result) {
			ok(t, r)
			if r.StructuredContent["all_present"] != true {
				t.Errorf("check = %v", r.StructuredContent)
			}
		}},
		{Name: "run_with_secrets", Arguments: dev(map[string]any{"secrets": []string{newKey}, "command": []string{"printenv", newKey}}),
			check: run("[redacted:"+newKey+"]\n", 0)},
		{Name: "no_such_tool", Arguments: map[string]any{}, check: fails()},
	}
}

func checkSession(t *testing.T, f *fixture, s *session, calls []toolCall) {
	t.Helper()
	want := []string{"check_secrets", "list_apps", "list_envs", "list_secrets", "run_with_secrets", "set_secret_from_generator"}
	if got := slices.Sorted(slices.Values(s.tools)); !slices.Equal(got, want) {
		t.Errorf("tools = %v", got)
	}
	if len(s.results) != len(calls) {
		t.Fatalf("%d results for %d calls", len(s.results), len(calls))
	}
	for i, c := range calls {
		t.Run(fmt.Sprintf("%02d_%s", i, c.Name), func(t *testing.T) { c.check(t, s.results[i]) })
	}
	values := f.values(t)
	var all []byte
	for _, r := range s.results {
		b, _ := json.Marshal(r)
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("[redacted:JWT]")) {
		t.Fatal("no redaction in the results: the scan below would prove nothing")
	}
	assertNoValue(t, "the tool results", all, values)
	assertNoValue(t, "what the client received", s.wire, values)
	assertNoValue(t, "the server's log", s.stderr, values)
	for _, w := range []string{"tool=run_with_secrets", "names=TOKEN", "exit_code=0", "tool=set_secret_from_generator"} {
		if !bytes.Contains(s.stderr, []byte(w)) {
			t.Errorf("the server's log lacks %q", w)
		}
	}
}

// TestE2EGoClient drives `ov mcp serve` with the Go SDK's client, against a
// real agent (holding the account key) and a real ov-server.
func TestE2EGoClient(t *testing.T) {
	f := setup(t)
	calls := scenario(f, "GO")
	s := goClient(t, f.asUser(exec.Command(filepath.Join(f.bin, "ov"), serveArgs...)), calls)
	checkSession(t, f, s, calls)
}

// TestE2ENodeClient does the same with the TypeScript SDK's client.
func TestE2ENodeClient(t *testing.T) {
	f := setup(t)
	calls := scenario(f, "NODE")
	s := nodeClient(t, f, calls)
	checkSession(t, f, s, calls)
}

// The probe reaches the agent's socket and files from outside the sandbox:
// the "blocked" lines of the scenario mean something.
func TestE2EProbeControl(t *testing.T) {
	f := setup(t)
	out, err := f.asUser(exec.Command(filepath.Join(f.bin, "ov-probe"), filepath.Join(f.rt, "ov", "agent.sock"),
		"run:"+filepath.Join(f.rt, "ov", "agent.sock"), filepath.Join(f.home, ".config", "ov", "config"), f.keyFile)).Output()
	if err != nil || strings.Count(string(out), "REACHED") != 4 || !strings.Contains(string(out), "VALUES ") {
		t.Fatalf("outside the sandbox the probe reaches:\n%s (%v)", out, err)
	}
}

// launchers start `ov mcp serve` as other programs do: through a parent
// whose argv holds "mcp serve", through timeout, and through sudo -u.
func TestE2ELaunchers(t *testing.T) {
	f := setup(t)
	ov := filepath.Join(f.bin, "ov")
	calls := []toolCall{
		{Name: "list_apps", Arguments: map[string]any{}, check: ok},
		{Name: "list_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev"}, check: ok},
		{Name: "run_with_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev", "secrets": []string{"TOKEN"}, "command": []string{"printenv", "TOKEN"}},
			check: run("[redacted:TOKEN]\n", 0)},
	}
	launchers := map[string]func() *exec.Cmd{
		"parent argv holds mcp serve": func() *exec.Cmd {
			return f.asUser(exec.Command("sh", "-c", `"$0" "$@"; exit $?`, ov, "mcp", "serve", "--allow-command", "*"))
		},
		"timeout": func() *exec.Cmd {
			return f.asUser(exec.Command("timeout", "120", ov, "mcp", "serve", "--allow-command", "*"))
		},
	}
	if os.Getuid() == 0 {
		env := append([]string{"env"}, f.env...)
		if sudo, err := exec.LookPath("sudo"); err == nil {
			launchers["sudo -u"] = func() *exec.Cmd {
				return exec.Command(sudo, append(append([]string{"-u", "#" + strconv.Itoa(f.uid), "--"}, env...), ov, "mcp", "serve", "--allow-command", "*")...)
			}
		} else {
			t.Log("sudo not installed: launching through runuser (util-linux) instead")
			launchers["runuser -u"] = func() *exec.Cmd {
				return exec.Command("runuser", append(append([]string{"-u", "nobody", "--"}, env...), ov, "mcp", "serve", "--allow-command", "*")...)
			}
		}
	} else {
		t.Log("not root: sudo -u needs a password here; the sudo launcher runs only as root")
	}
	for name, mk := range launchers {
		t.Run(name, func(t *testing.T) {
			s := goClient(t, mk(), calls)
			for i, c := range calls {
				c.check(t, s.results[i])
			}
		})
	}
}

// TestE2EAgentLocked: with the agent locked, the tools say so and what to do.
func TestE2EAgentLocked(t *testing.T) {
	f := setup(t)
	if out, err := f.ov("agent", "lock").CombinedOutput(); err != nil {
		t.Fatalf("lock: %v %s", err, out)
	}
	defer func() {
		if out, err := f.ov("agent", "unlock", "--password-file", f.pw).CombinedOutput(); err != nil {
			t.Fatalf("unlock: %v %s", err, out)
		}
	}()
	calls := []toolCall{
		{Name: "list_apps", Arguments: map[string]any{}, check: fails("locked", "ov agent unlock")},
		{Name: "list_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev"}, check: fails("locked", "ov agent unlock")},
		{Name: "run_with_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev", "secrets": []string{"TOKEN"}, "command": []string{"true"}},
			check: fails("locked", "ov agent unlock")},
	}
	s := goClient(t, f.asUser(exec.Command(filepath.Join(f.bin, "ov"), serveArgs...)), calls)
	for i, c := range calls {
		c.check(t, s.results[i])
	}
}

// TestE2EProtocol writes raw JSON-RPC lines to `ov mcp serve`: every request
// read before stdin closes is answered, and a malformed line gets a JSON-RPC
// error while the server carries on.
func TestE2EProtocol(t *testing.T) {
	f := setup(t)
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"
	call := func(id int, tool, args string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`+"\n", id, tool, args)
	}
	for _, tc := range []struct {
		name  string
		input string
		want  map[float64]string // id → a substring of its answer
	}{
		{"three calls then EOF", init +
			call(2, "list_secrets", `{"app":"myapp","env":"dev"}`) +
			call(3, "run_with_secrets", `{"app":"myapp","env":"dev","secrets":["TOKEN"],"command":["sh","-c","sleep 1; printenv TOKEN"]}`) +
			call(4, "check_secrets", `{"app":"myapp","env":"dev","names":["TOKEN"]}`),
			map[float64]string{1: "opaquevault", 2: "JWT", 3: "[redacted:TOKEN]", 4: "all_present"}},
		{"malformed lines", init +
			"this is not json\n" +
			`{"id":9,"method":` + "\n" +
			`{"hello":"world"}` + "\n" +
			call(5, "list_apps", `{}`),
			map[float64]string{1: "opaquevault", 5: "myapp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := f.asUser(exec.Command(filepath.Join(f.bin, "ov"), serveArgs...))
			cmd.Stdin = strings.NewReader(tc.input) // closed right after the requests
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ov mcp serve: %v\n%s", err, stderr.Bytes())
			}
			answers := map[float64]string{}
			var parseErrors, invalid int
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var m struct {
					ID    any
					Error *struct{ Code int }
				}
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("the server wrote a line that is not JSON: %q", line)
				}
				if m.Error != nil && m.Error.Code == -32700 {
					parseErrors++
				}
				if m.Error != nil && m.Error.Code == -32600 {
					invalid++
				}
				if id, ok := m.ID.(float64); ok {
					answers[id] = line
				}
			}
			for id, w := range tc.want {
				if !strings.Contains(answers[id], w) {
					t.Errorf("answer to %v = %q, want it to hold %q\n(all: %s)", id, answers[id], w, out)
				}
			}
			if len(answers) != len(tc.want) {
				t.Errorf("%d answers with an id, want %d:\n%s", len(answers), len(tc.want), out)
			}
			if tc.name == "malformed lines" && (parseErrors != 2 || invalid != 1) {
				t.Errorf("%d parse errors and %d invalid requests, want 2 and 1:\n%s", parseErrors, invalid, out)
			}
			assertNoValue(t, "the server's output", out, f.values(t))
		})
	}
}

// TestE2EEtcOv runs `ov mcp serve` where /etc/ov holds a machine key the
// user can read, as the guide sets it up (in a private mount namespace, so
// that this machine's /etc is not touched): commands cannot read it.
func TestE2EEtcOv(t *testing.T) {
	f := setup(t)
	if os.Getuid() != 0 {
		t.Skip("needs root for a private /etc/ov (mount namespace and overlay)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	work := filepath.Join(f.dir, "etc-overlay")
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	control := filepath.Join(f.dir, "out", "etc-control")
	u := strconv.Itoa(f.uid) + ":" + strconv.Itoa(f.gid)
	script := fmt.Sprintf(`set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir=%[1]s/upper,workdir=%[1]s/work /etc
mkdir -p /etc/ov && chmod 755 /etc/ov && cp %[2]s /etc/ov/myapp.key && chown %[3]s /etc/ov/myapp.key && chmod 600 /etc/ov/myapp.key
setpriv --reuid %[4]d --regid %[5]d --clear-groups ov-probe /etc/ov/myapp.key > %[6]s
exec setpriv --reuid %[4]d --regid %[5]d --clear-groups ov mcp serve --allow-command '*'`, work, f.keyFile, u, f.uid, f.gid, control)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = f.env
	calls := []toolCall{
		{Name: "run_with_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev", "secrets": []string{"TOKEN"}, "command": []string{"sh", "-c",
			"(setsid ov-probe /etc/ov/myapp.key /etc/ov &); sleep 0.5; ov run --app myapp --env dev --machine-key /etc/ov/myapp.key -- printenv TOKEN; echo rc=$?"}},
			check: func(t *testing.T, r result) {
				ok(t, r)
				o := structured[runResult](t, r)
				if !strings.Contains(o.Stdout, "blocked /etc/ov/myapp.key") || strings.Contains(o.Stdout, "REACHED") || strings.Contains(o.Stdout, "rc=0") ||
					strings.Contains(o.Stdout, "[redacted") {
					t.Errorf("with /etc/ov/myapp.key:\n%s\n%s", o.Stdout, o.Stderr)
				}
			}},
	}
	s := goClient(t, cmd, calls)
	if b, _ := os.ReadFile(control); !strings.Contains(string(b), "REACHED /etc/ov/myapp.key") {
		t.Fatalf("the key file was not readable outside the sandbox, the test proves nothing: %q", b)
	}
	calls[0].check(t, s.results[0])
}

// TestE2EMachineKeyAgent: the tools work with an agent that holds a machine
// key scoped to myapp/dev (as `ov agent install --app myapp --env dev`
// runs it), and refuse what that key cannot do.
func TestE2EMachineKeyAgent(t *testing.T) {
	f := setup(t)
	rt := filepath.Join(f.dir, "rt-machine")
	creds := filepath.Join(f.dir, "creds")
	for _, d := range []string{rt, creds} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
	}
	key, err := os.ReadFile(f.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cred := filepath.Join(creds, "ov-machine-key")
	if err := os.WriteFile(cred, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cred, f.uid, f.gid); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(rt, "ov", "agent.sock")
	agent := f.ov("agent", "serve", "--user-mode", "--socket", sock, "--app", "myapp", "--env", "dev",
		"--machine-key-credential", "ov-machine-key", "--rate-per-minute", "6000")
	agent.Env = append(agent.Env, "CREDENTIALS_DIRECTORY="+creds, "XDG_RUNTIME_DIR="+rt)
	var log syncBuf
	agent.Stderr = &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatalf("the machine-key agent did not listen:\n%s", log.Bytes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	calls := []toolCall{
		{Name: "list_apps", Arguments: map[string]any{}, check: func(t *testing.T, r result) {
			ok(t, r)
			if got := fmt.Sprint(r.StructuredContent["apps"]); got != "[map[app:myapp envs:[dev]]]" {
				t.Errorf("apps = %s", got)
			}
		}},
		{Name: "list_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev"}, check: func(t *testing.T, r result) {
			ok(t, r)
			if !strings.Contains(fmt.Sprint(r.StructuredContent["secrets"]), "map[name:JWT version:1]") {
				t.Errorf("secrets = %v", r.StructuredContent)
			}
		}},
		{Name: "list_secrets", Arguments: map[string]any{"app": "myapp", "env": "prod"}, check: fails("serves myapp/dev only")},
		{Name: "run_with_secrets", Arguments: map[string]any{"app": "myapp", "env": "dev", "secrets": []string{"TOKEN"}, "command": []string{"printenv", "TOKEN"}},
			check: run("[redacted:TOKEN]\n", 0)},
		{Name: "set_secret_from_generator", Arguments: map[string]any{"app": "myapp", "env": "dev", "name": "X_KEY", "kind": "hex"},
			check: fails("machine key cannot write")},
	}
	cmd := f.asUser(exec.Command(filepath.Join(f.bin, "ov"), serveArgs...))
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+rt)
	s := goClient(t, cmd, calls)
	for i, c := range calls {
		t.Run(fmt.Sprintf("%02d_%s", i, c.Name), func(t *testing.T) { c.check(t, s.results[i]) })
	}
}
