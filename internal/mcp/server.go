// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sirupsen/logrus"
)

// Name is the server's name in the MCP handshake.
const Name = "opaquevault"

// Options configure [Serve].
type Options struct {
	// Version is the binary's version, sent in the handshake.
	Version string
	// DefaultApp and DefaultEnv are used when the model names no app or env
	// (`ov mcp serve --app A --env E`). They are defaults, not limits.
	DefaultApp, DefaultEnv string
	// AllowedCommands, if not empty, are the only programs run_command may
	// start, by bare name looked up in PATH (argv[0] holding a slash is then
	// refused). Empty allows any program.
	AllowedCommands []string
	// Env returns the environment commands start with, before the secrets
	// are added (default [os.Environ]).
	Env func() []string
	// MaxOutput bounds what is returned of each of stdout and stderr
	// (default [DefaultMaxOutput]).
	MaxOutput int
	// Log receives the server's log (never a value). Default: text on
	// stderr. It must not write to the protocol stream.
	Log *logrus.Entry
}

// server holds what the tool handlers share.
type server struct {
	src       Source
	opts      Options
	log       *logrus.Entry
	maxOutput int
	grace     time.Duration
}

func newServer(src Source, opts Options) *server {
	s := &server{src: src, opts: opts, log: opts.Log, maxOutput: opts.MaxOutput, grace: killGrace}
	if s.log == nil {
		l := logrus.New()
		l.SetOutput(os.Stderr)
		l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: os.Getenv("INVOCATION_ID") != ""})
		s.log = logrus.NewEntry(l)
	}
	if s.maxOutput <= 0 {
		s.maxOutput = DefaultMaxOutput
	}
	if s.opts.Env == nil {
		s.opts.Env = os.Environ
	}
	if s.opts.Version == "" {
		s.opts.Version = "dev"
	}
	return s
}

// Serve runs an MCP server on in and out (newline-delimited JSON-RPC, the
// stdio transport) until the client closes in (nil) or ctx ends (ctx.Err()).
// Its tools are:
//
//   - list_apps {}: the apps and envs src can open;
//   - list_secrets {app, env}: the secret names of app/env, with their count;
//   - run_command {app, env, command, secrets, cwd, timeout_seconds, stdin}:
//     runs command (argv, no shell) with the named secrets (default: all of
//     the env's) added to its environment and returns its exit code and its
//     redacted output (see [Redactor]).
//
// Nothing Serve writes to out contains a value. On Linux it makes the
// process non-dumpable first (see the package documentation).
func Serve(ctx context.Context, in io.Reader, out io.Writer, src Source, opts Options) error {
	s := newServer(src, opts)
	if err := harden(); err != nil {
		s.log.WithError(err).Warn("cannot make the process non-dumpable: commands could read its memory")
	}
	t := &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}}
	s.log.WithFields(logrus.Fields{"version": s.opts.Version, "default_app": s.opts.DefaultApp, "default_env": s.opts.DefaultEnv}).Info("mcp server started")
	err := s.mcpServer().Run(ctx, t)
	if err != nil && ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve mcp: %w", err)
	}
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

const instructions = `OpaqueVault holds this project's secrets. You can see secret names, never values.
Use list_apps and list_secrets to find names, and run_command to run a program with secrets in its environment.
Commands run without a shell: to expand $NAME, pass ["sh", "-c", "… \"$NAME\" …"].
Every injected value is replaced by [redacted:NAME] in what you get back; do not try to reveal values.`

func (s *server) mcpServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: Name, Title: "OpaqueVault", Version: s.opts.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		Capabilities: &mcp.ServerCapabilities{}, // no logging capability: nothing is logged over MCP
	})
	yes, no := true, false
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_apps",
		Title:       "List apps and environments",
		Description: "List the apps and environments whose secrets can be used. Not every agent can list them: then ask the user.",
		InputSchema: mustSchema[struct{}](nil),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, guarded(s, "list_apps", s.listApps))
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_secrets",
		Title:       "List secret names",
		Description: "List the names of the secrets of an app's environment (never their values).",
		InputSchema: mustSchema[scopeIn](s.describeScope),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, guarded(s, "list_secrets", s.listSecrets))
	mcp.AddTool(srv, &mcp.Tool{
		Name:  "run_command",
		Title: "Run a command with secrets",
		Description: "Run a program with secrets of an app's environment added to its environment variables, " +
			"and return its exit code and output. The command is an argv list run directly, without a shell " +
			`(use ["sh", "-c", "..."] for pipes or $NAME expansion). ` +
			"Every form of every injected value in the output is replaced by [redacted:NAME]. " +
			"stdout and stderr are each cut at " + strconv.Itoa(s.maxOutput) + " bytes.",
		InputSchema: mustSchema[runIn](func(sc *jsonschema.Schema) {
			s.describeScope(sc)
			for _, p := range []string{"command", "secrets"} {
				sc.Properties[p].Type, sc.Properties[p].Types = "array", nil // not null
			}
			sc.Properties["command"].MinItems = ptr(1)
			t := sc.Properties["timeout_seconds"]
			t.Minimum, t.Maximum = ptr(1.0), ptr(MaxTimeout.Seconds())
			t.Default = json.RawMessage(strconv.Itoa(int(DefaultTimeout.Seconds())))
		}),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: &yes},
	}, guarded(s, "run_command", s.runCommand))
	return srv
}

func ptr[T any](v T) *T { return &v }

// mustSchema infers the input schema of T and lets edit adjust it.
func mustSchema[T any](edit func(*jsonschema.Schema)) *jsonschema.Schema {
	sc, err := jsonschema.For[T](nil)
	if err != nil {
		panic(err) // a programmer error in the types below
	}
	if edit != nil {
		edit(sc)
	}
	return sc
}

// describeScope documents app and env with their defaults, and requires
// those without one.
func (s *server) describeScope(sc *jsonschema.Schema) {
	for _, f := range []struct{ key, def, what string }{
		{"app", s.opts.DefaultApp, "the app, such as myapp"},
		{"env", s.opts.DefaultEnv, "the environment, such as development"},
	} {
		p := sc.Properties[f.key]
		if f.def != "" {
			p.Description = f.what + " (default: " + strconv.Quote(f.def) + ")"
			continue
		}
		p.Description = f.what + " (required: no default was configured; see list_apps)"
		sc.Required = append(sc.Required, f.key)
	}
}

// guarded wraps a handler: it logs the call, turns a panic into a plain
// error, and passes every error through the sanitizer.
func guarded[In, Out any](s *server, tool string, h func(context.Context, In) (Out, *Redactor, error)) mcp.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, _ *mcp.CallToolRequest, in In) (_ *mcp.CallToolResult, out Out, err error) {
		start := time.Now()
		log := s.log.WithField("tool", tool)
		defer func() {
			if p := recover(); p != nil {
				log.Errorf("internal error: %T", p) // not %v: the value could hold anything
				var zero Out
				out, err = zero, errors.New(tool+": internal error (see the server's log)")
			}
		}()
		var red *Redactor
		out, red, err = h(ctx, in)
		if err != nil {
			msg := sanitize(err.Error(), red)
			if hint := hintOf(err); hint != "" {
				msg += "\nhint: " + hint
			}
			log.WithField("duration_ms", time.Since(start).Milliseconds()).Info("failed: " + msg)
			var zero Out
			return nil, zero, errors.New(msg)
		}
		log.WithField("duration_ms", time.Since(start).Milliseconds()).Info("done")
		return nil, out, nil
	}
}

// maxErrLen bounds an error message sent to the model.
const maxErrLen = 2048

// sanitize makes msg safe to send: known values redacted, control
// characters (other than newline and tab) dropped, length bounded.
func sanitize(msg string, red *Redactor) string {
	if red != nil {
		msg = red.RedactString(msg)
	}
	msg = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\t') {
			return -1
		}
		return r
	}, msg)
	if len(msg) > maxErrLen {
		cut := maxErrLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// ---- list_apps ----

type appsOut struct {
	Apps       []AppEnvs `json:"apps"`
	DefaultApp string    `json:"default_app,omitempty"`
	DefaultEnv string    `json:"default_env,omitempty"`
}

func (s *server) listApps(ctx context.Context, _ struct{}) (*appsOut, *Redactor, error) {
	apps, err := s.src.Apps(ctx)
	if err != nil {
		if errors.Is(err, ErrUnsupported) && hintOf(err) == "" {
			err = withHint(err, "ask the user which app and env to use")
		}
		if s.opts.DefaultApp != "" && errors.Is(err, ErrUnsupported) {
			err = withHint(err, fmt.Sprintf("the server was started for app %q, env %q: use those unless the user says otherwise",
				s.opts.DefaultApp, s.opts.DefaultEnv))
		}
		return nil, nil, err
	}
	if apps == nil {
		apps = []AppEnvs{}
	}
	for i := range apps {
		if apps[i].Envs == nil {
			apps[i].Envs = []string{}
		}
	}
	return &appsOut{Apps: apps, DefaultApp: s.opts.DefaultApp, DefaultEnv: s.opts.DefaultEnv}, nil, nil
}

// ---- list_secrets ----

type scopeIn struct {
	App string `json:"app,omitempty"`
	Env string `json:"env,omitempty"`
}

type namesOut struct {
	App   string   `json:"app"`
	Env   string   `json:"env"`
	Names []string `json:"names" jsonschema:"the secret names, which are also the environment variable names run_command sets"`
	Count int      `json:"count"`
}

func (s *server) scope(what, app, env string) (string, string, error) {
	if app == "" {
		app = s.opts.DefaultApp
	}
	if env == "" {
		env = s.opts.DefaultEnv
	}
	switch {
	case app == "":
		return "", "", withHint(fmt.Errorf("%s: no app given, and the server has no default app", what),
			"call list_apps, or ask the user which app to use")
	case env == "":
		return "", "", withHint(fmt.Errorf("%s of %s: no env given, and the server has no default env", what, app),
			"call list_apps, or ask the user which environment to use")
	}
	return app, env, nil
}

func (s *server) listSecrets(ctx context.Context, in scopeIn) (*namesOut, *Redactor, error) {
	app, env, err := s.scope("list secrets", in.App, in.Env)
	if err != nil {
		return nil, nil, err
	}
	names, err := s.src.List(ctx, app, env)
	if err != nil {
		return nil, nil, err
	}
	names = slices.Clone(names)
	if names == nil {
		names = []string{}
	}
	slices.Sort(names)
	return &namesOut{App: app, Env: env, Names: names, Count: len(names)}, nil, nil
}

// ---- run_command ----

type runIn struct {
	App            string   `json:"app,omitempty"`
	Env            string   `json:"env,omitempty"`
	Command        []string `json:"command" jsonschema:"the program and its arguments, such as [\"npm\", \"test\"]; run directly, not by a shell"`
	Secrets        []string `json:"secrets,omitempty" jsonschema:"the secrets to add to the environment, by name (default: all of the env's; [] for none)"`
	Cwd            string   `json:"cwd,omitempty" jsonschema:"the working directory (default: the server's, normally the project's)"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty" jsonschema:"seconds before the command's process group is killed"`
	Stdin          string   `json:"stdin,omitempty" jsonschema:"text for the command's standard input (default: none)"`
}

type runOut struct {
	App         string   `json:"app"`
	Env         string   `json:"env"`
	Injected    []string `json:"injected" jsonschema:"the names of the secrets added to the environment"`
	ExitCode    int      `json:"exit_code" jsonschema:"the exit status; -1 when the command was killed by a signal"`
	Signal      string   `json:"signal,omitempty" jsonschema:"the signal that killed the command"`
	TimedOut    bool     `json:"timed_out,omitempty"`
	DurationMS  int64    `json:"duration_ms"`
	Stdout      string   `json:"stdout"`
	Stderr      string   `json:"stderr"`
	StdoutBytes int64    `json:"stdout_bytes" jsonschema:"bytes the command wrote to stdout, before truncation"`
	StderrBytes int64    `json:"stderr_bytes" jsonschema:"bytes the command wrote to stderr, before truncation"`
	Notes       []string `json:"notes,omitempty"`
}

func (s *server) runCommand(ctx context.Context, in runIn) (*runOut, *Redactor, error) {
	app, env, err := s.scope("run command", in.App, in.Env)
	if err != nil {
		return nil, nil, err
	}
	if len(in.Command) == 0 {
		return nil, nil, errors.New(`run command: empty command: give the program and its arguments, such as ["npm", "test"]`)
	}
	timeout := DefaultTimeout
	if in.TimeoutSeconds != 0 {
		timeout = time.Duration(in.TimeoutSeconds) * time.Second
		if timeout < time.Second || timeout > MaxTimeout {
			return nil, nil, fmt.Errorf("run command: timeout_seconds %d out of range 1-%d", in.TimeoutSeconds, int(MaxTimeout.Seconds()))
		}
	}
	dir, err := workDir(in.Cwd)
	if err != nil {
		return nil, nil, err
	}
	path, err := resolveProgram(in.Command[0], s.opts.AllowedCommands, dir)
	if err != nil {
		return nil, nil, err
	}

	available, err := s.src.List(ctx, app, env)
	if err != nil {
		return nil, nil, err
	}
	// secrets absent: all of the env's (leaving out, with a note, names that
	// cannot be variables); secrets: []: none.
	names, all := dedup(in.Secrets), in.Secrets == nil
	if all {
		names = dedup(available)
	}
	var missing, invalid []string
	for _, n := range names {
		if !slices.Contains(available, n) {
			missing = append(missing, strconv.Quote(n))
		} else if !validVarName(n) {
			invalid = append(invalid, strconv.Quote(n))
		}
	}
	if len(missing) > 0 {
		return nil, nil, withHint(fmt.Errorf("run command: no secret %s in %s/%s", strings.Join(missing, ", "), app, env),
			fmt.Sprintf("%s/%s has: %s", app, env, listOrNone(available)))
	}
	var notes []string
	if len(invalid) > 0 {
		if !all {
			return nil, nil, withHint(fmt.Errorf("run command: secret %s of %s/%s is not a valid environment variable name", strings.Join(invalid, ", "), app, env),
				"leave it out of secrets")
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !validVarName(n) })
		notes = append(notes, fmt.Sprintf("not injected: %s, not valid environment variable names", strings.Join(invalid, ", ")))
	}
	var values map[string][]byte
	if len(names) > 0 {
		values, err = s.src.Get(ctx, app, env, names)
		defer wipeValues(values)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			if _, ok := values[n]; !ok {
				return nil, nil, fmt.Errorf("run command: the source did not return secret %q", n)
			}
		}
		var nul []string
		for n, v := range values {
			switch {
			case !slices.Contains(names, n):
				clear(v)
				delete(values, n) // only what was asked for is injected
			case bytes.IndexByte(v, 0) >= 0:
				nul = append(nul, strconv.Quote(n))
			}
		}
		if len(nul) > 0 {
			slices.Sort(nul)
			if !all {
				return nil, nil, withHint(fmt.Errorf("run command: secret %s of %s/%s holds a NUL byte, which an environment variable cannot", strings.Join(nul, ", "), app, env),
					"leave it out of secrets")
			}
			for _, q := range nul {
				n, _ := strconv.Unquote(q)
				clear(values[n])
				delete(values, n)
			}
			notes = append(notes, fmt.Sprintf("not injected: %s, holding a NUL byte", strings.Join(nul, ", ")))
		}
	}
	red := NewRedactor(values)
	defer red.Wipe()

	spec := &execSpec{
		path: path, argv: in.Command, env: buildEnv(s.opts.Env(), values), dir: dir, stdin: in.Stdin,
		timeout: timeout, grace: s.grace, keep: s.maxOutput + red.Margin(),
	}
	log := s.log.WithFields(logrus.Fields{"app": app, "env": env, "program": in.Command[0], "secrets": len(names)})
	res, err := runProcess(ctx, spec)
	if err != nil {
		return nil, red, err
	}
	defer res.stdout.wipe()
	defer res.stderr.wipe()
	log.WithFields(logrus.Fields{"exit_code": res.exitCode, "signal": res.signal, "timed_out": res.timedOut}).Info("command ended")

	out := &runOut{
		App: app, Env: env, Injected: append([]string{}, slices.Sorted(maps.Keys(values))...),
		ExitCode: res.exitCode, Signal: res.signal, TimedOut: res.timedOut, DurationMS: res.duration.Milliseconds(),
		StdoutBytes: res.stdout.total, StderrBytes: res.stderr.total, Notes: notes,
	}
	for _, st := range []struct {
		name string
		c    *capture
		dst  *string
	}{{"stdout", res.stdout, &out.Stdout}, {"stderr", res.stderr, &out.Stderr}} {
		text := red.RedactHead(st.c.buf, s.maxOutput)
		if leaked := wireLeaks(red, text); len(leaked) > 0 {
			// Redaction missed a form that the JSON encoding of the result
			// would reveal: send nothing of this stream.
			log.WithField("stream", st.name).Warn("output withheld: its encoding still held a secret")
			text = []byte(fmt.Sprintf("[%s withheld: even after redaction it still contained a form of %s]", st.name, strings.Join(leaked, ", ")))
		}
		*st.dst = string(text)
		clear(text)
		if st.c.total > int64(s.maxOutput) {
			out.Notes = append(out.Notes, fmt.Sprintf("%s truncated: the command wrote %d bytes, the first %d are shown", st.name, st.c.total, s.maxOutput))
		}
	}
	if res.timedOut {
		out.Notes = append(out.Notes, fmt.Sprintf("timed out after %v: the process group was killed", timeout))
	}
	if short := red.Short(); len(short) > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%s shorter than %d bytes: only exact occurrences are redacted, and the value may be guessable from the output",
			strings.Join(short, ", "), MinRedactLen))
	}
	if len(values) == 0 && all {
		out.Notes = append(out.Notes, fmt.Sprintf("no secrets injected: %s/%s has none", app, env))
	}
	if res.cancelled {
		return nil, red, errors.New("run command: cancelled by the client; the process group was killed")
	}
	return out, red, nil
}

// wireLeaks returns the names of the values that the JSON encodings of text
// (as structured content, and inside the JSON text content) still reveal.
// Values shorter than [MinRedactLen] are not checked: they match anywhere.
func wireLeaks(red *Redactor, text []byte) []string {
	var leaked []string
	s := string(text)
	for _, html := range []bool{true, false} {
		once := jsonString(s, html)
		twice := jsonString(string(once), html)
		for _, w := range [][]byte{once, twice} {
			for _, n := range red.Found(w) {
				if !slices.Contains(red.short, n) && !slices.Contains(leaked, n) {
					leaked = append(leaked, n)
				}
			}
			clear(w)
		}
	}
	return leaked
}

func jsonString(s string, html bool) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func workDir(cwd string) (string, error) {
	if cwd == "" {
		return "", nil
	}
	dir, err := filepath.Abs(cwd)
	if err != nil {
		return "", fmt.Errorf("run command: cwd %q: %w", cwd, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("run command: cwd %q: %w", cwd, startErr(err))
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("run command: cwd %q: not a directory", cwd)
	}
	return dir, nil
}

func dedup(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no secrets"
	}
	return strings.Join(slices.Sorted(slices.Values(names)), ", ")
}
