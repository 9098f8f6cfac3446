// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/names"
)

// Name is the server's name in the MCP handshake.
const Name = "opaquevault"

// Options configure [Serve].
type Options struct {
	// Version is the binary's version, sent in the handshake.
	Version string
	// App and Env pin the server to one app, or one app and env (`ov mcp
	// serve --app A --env E`): tools use them when the model names none, and
	// refuse any other.
	App, Env string
	// AllowCommands, if not empty, are the only command lines
	// run_with_secrets may run: patterns matched against the argv joined by
	// single spaces, where * matches any text and ? one character ("npm
	// test", "go test *"). Empty allows any program except shells and
	// interpreters (see [shells]), which must be allowed explicitly.
	AllowCommands []string
	// AllowWrites lets set_secret_from_generator write.
	AllowWrites bool
	// Approve, when set, must approve every call that injects or writes
	// secrets (the terminal: [TTYApprover]).
	Approve Approver
	// Isolation says how commands are kept from ov's secrets.
	Isolation Isolation
	// ChildEnv returns the environment commands start with, before the
	// secrets are added (default [os.Environ]).
	ChildEnv func() []string
	// MaxOutput bounds what is returned of each of stdout and stderr
	// (default [DefaultMaxOutput]).
	MaxOutput int
	// Log receives the server's log, one entry per call (tool, app, env,
	// names, exit code; never a value). Default: text on stderr. It must not
	// write to the protocol stream.
	Log *logrus.Entry
}

// server holds what the tool handlers share.
type server struct {
	src       Source
	opts      Options
	log       *logrus.Entry
	maxOutput int
	grace     time.Duration

	isoOnce sync.Once
	isoErr  error
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
	if s.opts.Isolation.Helper == "" && !s.opts.Isolation.Unisolated {
		// Resolved now: once the process is non-dumpable, /proc/self/exe is root's.
		if exe, err := os.Executable(); err == nil {
			s.opts.Isolation.Helper = exe
		}
	}
	if s.opts.ChildEnv == nil {
		s.opts.ChildEnv = os.Environ
	}
	if s.opts.Version == "" {
		s.opts.Version = "dev"
	}
	return s
}

// Serve runs an MCP server on in and out (newline-delimited JSON-RPC, the
// stdio transport) until the client closes in (nil) or ctx ends (ctx.Err()).
// Every request read before in closes is answered; a line that is not
// JSON-RPC gets a JSON-RPC error and the server carries on. Nothing Serve
// writes to out contains a value. On Linux it makes the process
// non-dumpable first (see the package documentation).
func Serve(ctx context.Context, in io.Reader, out io.Writer, src Source, opts Options) error {
	s := newServer(src, opts)
	if err := harden(); err != nil {
		s.log.WithError(err).Warn("cannot make the process non-dumpable: commands could read its memory")
	}
	s.log.WithFields(logrus.Fields{"version": s.opts.Version, "app": s.opts.App, "env": s.opts.Env,
		"allow_writes": s.opts.AllowWrites, "approve": approverName(s.opts.Approve), "isolation": s.opts.Isolation.mode()}).Info("mcp server started")
	err := s.mcpServer().Run(ctx, &stdioTransport{in: in, out: out})
	if err != nil && ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve mcp: %w", err)
	}
	return nil
}

const instructions = `OpaqueVault holds this project's secrets. You see secret names, never values.
Find names with list_apps, list_envs and list_secrets; check_secrets tells which of a list exist.
run_with_secrets runs a program with named secrets in its environment; it runs argv directly, without a shell.
Every injected value, and its base64, hex, URL and JSON encodings, is replaced by [redacted:NAME] in what you get back.
Do not try to reveal values: a command that transforms a value on purpose (reversing, compressing) could, and is against the user's wishes.
To create a credential, use set_secret_from_generator: the value is generated inside OpaqueVault and you never see it.`

func (s *server) mcpServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: Name, Title: "OpaqueVault", Version: s.opts.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		Capabilities: &mcp.ServerCapabilities{}, // no logging capability: nothing is logged over MCP
	})
	yes, no := true, false
	ro := &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no}
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_apps",
		Title:       "List apps and environments",
		Description: "List the apps, and the environments of each, whose secrets you can use." + s.pinNote(),
		InputSchema: mustSchema[struct{}](nil),
		Annotations: ro,
	}, guarded(s, "list_apps", s.listApps))
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_envs",
		Title:       "List the environments of an app",
		Description: "List the environments (such as development, production) of an app." + s.pinNote(),
		InputSchema: mustSchema[appIn](func(sc *jsonschema.Schema) { s.describeScope(sc, false) }),
		Annotations: ro,
	}, guarded(s, "list_envs", s.listEnvs))
	mcp.AddTool(srv, &mcp.Tool{
		Name:  "list_secrets",
		Title: "List secret names",
		Description: "List the secrets of an app's environment: names, versions and when the environment last changed. " +
			"Never values. The names are also the environment variable names run_with_secrets sets.",
		InputSchema: mustSchema[scopeIn](func(sc *jsonschema.Schema) { s.describeScope(sc, true) }),
		Annotations: ro,
	}, guarded(s, "list_secrets", s.listSecrets))
	mcp.AddTool(srv, &mcp.Tool{
		Name:  "check_secrets",
		Title: "Check which secrets exist",
		Description: "Check which of the given secret names exist in an app's environment and which are missing, " +
			"for example the variables a program reads (from its code or its .env.example) when moving it to OpaqueVault. " +
			"Names that no secret can have are listed as invalid, with the rule.",
		InputSchema: mustSchema[checkIn](func(sc *jsonschema.Schema) {
			s.describeScope(sc, true)
			sc.Properties["names"].Type, sc.Properties["names"].Types = "array", nil
			sc.Properties["names"].MinItems = ptr(1)
			sc.Required = append(sc.Required, "names")
		}),
		Annotations: ro,
	}, guarded(s, "check_secrets", s.checkSecrets))
	mcp.AddTool(srv, &mcp.Tool{
		Name:  "run_with_secrets",
		Title: "Run a command with secrets",
		Description: "Run a program with the named secrets of an app's environment as environment variables, and return its exit code, " +
			"stdout and stderr. command is an argv list run directly, without a shell" + s.shellNote() + ". " +
			"In the output, each injected value and its base64, base64url, hex (also as xxd, od and hexdump show it), URL-encoded and JSON-escaped forms " +
			"are replaced by [redacted:NAME]. A program that deliberately transforms a value (reverses, compresses or encrypts it) " +
			"can reveal it: do not do that. The command cannot reach OpaqueVault itself: it runs isolated from the agent and ov's files. " +
			"stdout and stderr are each cut at " + strconv.Itoa(s.maxOutput) + " bytes; the command is killed at its timeout." + s.commandsNote(),
		InputSchema: mustSchema[runIn](func(sc *jsonschema.Schema) {
			s.describeScope(sc, true)
			for _, p := range []string{"command", "secrets"} {
				sc.Properties[p].Type, sc.Properties[p].Types = "array", nil // not null
			}
			sc.Properties["command"].MinItems = ptr(1)
			sc.Required = append(sc.Required, "command", "secrets")
			t := sc.Properties["timeout_s"]
			t.Minimum, t.Maximum = ptr(1.0), ptr(MaxTimeout.Seconds())
			t.Default = []byte(strconv.Itoa(int(DefaultTimeout.Seconds())))
		}),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: &yes},
	}, guarded(s, "run_with_secrets", s.runWithSecrets))
	mcp.AddTool(srv, &mcp.Tool{
		Name:  "set_secret_from_generator",
		Title: "Create or rotate a secret with a generated value",
		Description: "Create a secret, or give an existing one a new version, with a random value generated inside OpaqueVault: " +
			"the value is never shown to you or anyone. kind is hex (length random bytes, 2*length hex digits), base64 (length random bytes), " +
			"alphanumeric (length characters of A-Z, a-z, 0-9) or uuid (length 36 or omitted). Creates the app and environment if needed. " +
			"Rotating a secret that a running service uses can break it: ask the user first." +
			map[bool]string{true: "", false: " Writes are off: the user must start the server with --allow-writes."}[s.opts.AllowWrites],
		InputSchema: mustSchema[genIn](func(sc *jsonschema.Schema) {
			s.describeScope(sc, true)
			sc.Properties["kind"].Enum = []any{localapi.KindHex, localapi.KindBase64, localapi.KindAlphanumeric, localapi.KindUUID}
			sc.Required = append(sc.Required, "name", "kind")
		}),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, IdempotentHint: false, OpenWorldHint: &no},
	}, guarded(s, "set_secret_from_generator", s.setFromGenerator))
	return srv
}

func ptr[T any](v T) *T { return &v }

func (s *server) pinNote() string {
	switch {
	case s.opts.Env != "":
		return fmt.Sprintf(" This server is limited to %s/%s.", s.opts.App, s.opts.Env)
	case s.opts.App != "":
		return fmt.Sprintf(" This server is limited to app %s.", s.opts.App)
	}
	return ""
}

func (s *server) shellNote() string {
	if len(s.opts.AllowCommands) > 0 {
		return ""
	}
	return " (shells and interpreters such as sh, bash, python are refused unless the user allowed them)"
}

func (s *server) commandsNote() string {
	if len(s.opts.AllowCommands) == 0 {
		return ""
	}
	return " Only these command lines are allowed (* matches anything): " + strings.Join(quoteAll(s.opts.AllowCommands), ", ") + "."
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

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

// describeScope documents app (and env, with withEnv) with their defaults,
// and requires those without one.
func (s *server) describeScope(sc *jsonschema.Schema, withEnv bool) {
	fields := []struct{ key, def, what string }{{"app", s.opts.App, "the app, such as myapp"}}
	if withEnv {
		fields = append(fields, struct{ key, def, what string }{"env", s.opts.Env, "the environment, such as development"})
	}
	for _, f := range fields {
		p := sc.Properties[f.key]
		if f.def != "" {
			p.Description = f.what + " (default and only allowed value: " + strconv.Quote(f.def) + ")"
			continue
		}
		p.Description = f.what + " (required; see list_apps)"
		sc.Required = append(sc.Required, f.key)
	}
}

// call is what a handler reports for the log: never a value.
type call struct {
	app, env string
	names    []string
	fields   logrus.Fields
}

// guarded wraps a handler: it logs the call (tool, app, env, names and what
// the handler adds; never a value), turns a panic into a plain error, and
// passes every error through the sanitizer.
func guarded[In, Out any](s *server, tool string, h func(context.Context, In, *call) (Out, *Redactor, error)) mcp.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, _ *mcp.CallToolRequest, in In) (_ *mcp.CallToolResult, out Out, err error) {
		start := time.Now()
		c := &call{fields: logrus.Fields{}}
		defer func() {
			log := s.log.WithField("tool", tool).WithField("duration_ms", time.Since(start).Milliseconds())
			if c.app != "" {
				log = log.WithField("app", c.app)
			}
			if c.env != "" {
				log = log.WithField("env", c.env)
			}
			if c.names != nil {
				log = log.WithField("names", strings.Join(c.names, ","))
			}
			log = log.WithFields(c.fields)
			if p := recover(); p != nil {
				log.Errorf("internal error: %T", p) // not %v: the value could hold anything
				var zero Out
				out, err = zero, errors.New(tool+": internal error (see the server's log)")
				return
			}
			if err != nil {
				log.WithField("error", err.Error()).Info("call failed")
				return
			}
			log.Info("call done")
		}()
		var red *Redactor
		out, red, err = h(ctx, in, c)
		if err != nil {
			msg := sanitize(err.Error(), red)
			if hint := hintOf(err); hint != "" {
				msg += "\nhint: " + sanitize(hint, red)
			}
			var zero Out
			return nil, zero, errors.New(msg)
		}
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

// ---- scope ----

type appIn struct {
	App string `json:"app,omitempty"`
}

type scopeIn struct {
	App string `json:"app,omitempty"`
	Env string `json:"env,omitempty"`
}

// scope resolves app and env against the pin; withEnv false resolves the
// app only.
func (s *server) scope(what, app, env string, withEnv bool) (string, string, error) {
	if app == "" {
		app = s.opts.App
	}
	if env == "" {
		env = s.opts.Env
	}
	switch {
	case app == "":
		return "", "", withHint(fmt.Errorf("%s: no app given", what), "call list_apps, or ask the user which app to use")
	case s.opts.App != "" && app != s.opts.App:
		return "", "", withHint(fmt.Errorf("%s: this server is limited to app %q, not %q", what, s.opts.App, app),
			"use app "+strconv.Quote(s.opts.App)+", or ask the user to start ov mcp serve for the other app")
	case !withEnv:
		return app, "", nil
	case env == "":
		return "", "", withHint(fmt.Errorf("%s of %s: no env given", what, app), "call list_envs, or ask the user which environment to use")
	case s.opts.Env != "" && env != s.opts.Env:
		return "", "", withHint(fmt.Errorf("%s: this server is limited to %s/%s, not %s/%s", what, s.opts.App, s.opts.Env, app, env),
			"use env "+strconv.Quote(s.opts.Env)+", or ask the user to start ov mcp serve for the other environment")
	}
	return app, env, nil
}

// scopes returns what the source can open, within the pin, grouped by app.
func (s *server) scopes(ctx context.Context) ([]AppEnvs, error) {
	sc, err := s.src.Scopes(ctx)
	if err != nil {
		return nil, err
	}
	out := []AppEnvs{}
	for _, x := range sc {
		if (s.opts.App != "" && x.App != s.opts.App) || (s.opts.Env != "" && x.Env != s.opts.Env) {
			continue
		}
		i := slices.IndexFunc(out, func(a AppEnvs) bool { return a.App == x.App })
		if i < 0 {
			out = append(out, AppEnvs{App: x.App, Envs: []string{}})
			i = len(out) - 1
		}
		out[i].Envs = append(out[i].Envs, x.Env)
	}
	slices.SortFunc(out, func(a, b AppEnvs) int { return strings.Compare(a.App, b.App) })
	for i := range out {
		slices.Sort(out[i].Envs)
	}
	return out, nil
}

// AppEnvs is an app and the environments of it that can be used.
type AppEnvs struct {
	App  string   `json:"app"`
	Envs []string `json:"envs"`
}

// ---- list_apps, list_envs ----

type appsOut struct {
	Apps []AppEnvs `json:"apps"`
}

func (s *server) listApps(ctx context.Context, _ struct{}, c *call) (*appsOut, *Redactor, error) {
	apps, err := s.scopes(ctx)
	if err != nil {
		return nil, nil, err
	}
	c.fields["apps"] = len(apps)
	return &appsOut{Apps: apps}, nil, nil
}

type envsOut struct {
	App  string   `json:"app"`
	Envs []string `json:"envs"`
}

func (s *server) listEnvs(ctx context.Context, in appIn, c *call) (*envsOut, *Redactor, error) {
	app, _, err := s.scope("list envs", in.App, "", false)
	if err != nil {
		return nil, nil, err
	}
	c.app = app
	apps, err := s.scopes(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range apps {
		if a.App == app {
			return &envsOut{App: app, Envs: a.Envs}, nil, nil
		}
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.App
	}
	return nil, nil, withHint(fmt.Errorf("list envs: no app %q", app), "the apps are: "+listOrNone(names, "none"))
}

// ---- list_secrets, check_secrets ----

type secretOut struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

type secretsOut struct {
	App       string      `json:"app"`
	Env       string      `json:"env"`
	Secrets   []secretOut `json:"secrets" jsonschema:"name and version of each secret, by name; never values"`
	Count     int         `json:"count"`
	UpdatedAt string      `json:"updated_at,omitempty" jsonschema:"when the environment last changed (RFC 3339, UTC)"`
	Seq       uint64      `json:"seq" jsonschema:"the environment's change counter"`
}

func (s *server) info(ctx context.Context, what, app, env string, c *call) (string, string, *localapi.EnvInfo, error) {
	app, env, err := s.scope(what, app, env, true)
	if err != nil {
		return "", "", nil, err
	}
	c.app, c.env = app, env
	in, err := s.src.Info(ctx, app, env)
	if err != nil {
		return "", "", nil, err
	}
	return app, env, in, nil
}

func (s *server) listSecrets(ctx context.Context, in scopeIn, c *call) (*secretsOut, *Redactor, error) {
	app, env, info, err := s.info(ctx, "list secrets", in.App, in.Env, c)
	if err != nil {
		return nil, nil, err
	}
	out := &secretsOut{App: app, Env: env, Secrets: []secretOut{}, Count: len(info.Secrets), Seq: info.Seq}
	for _, x := range info.Secrets {
		out.Secrets = append(out.Secrets, secretOut{Name: x.Name, Version: x.Version})
	}
	slices.SortFunc(out.Secrets, func(a, b secretOut) int { return strings.Compare(a.Name, b.Name) })
	if !info.UpdatedAt.IsZero() {
		out.UpdatedAt = info.UpdatedAt.UTC().Format(time.RFC3339)
	}
	c.fields["count"] = out.Count
	return out, nil, nil
}

type checkIn struct {
	App   string   `json:"app,omitempty"`
	Env   string   `json:"env,omitempty"`
	Names []string `json:"names" jsonschema:"the secret names to look for, such as [\"DATABASE_URL\", \"STRIPE_KEY\"]"`
}

type checkOut struct {
	App        string   `json:"app"`
	Env        string   `json:"env"`
	Present    []string `json:"present"`
	Missing    []string `json:"missing"`
	Invalid    []string `json:"invalid"`        // names no secret can have (internal/names): never "missing"
	Rule       string   `json:"rule,omitempty"` // with invalid names: what a secret name is
	AllPresent bool     `json:"all_present"`
}

func (s *server) checkSecrets(ctx context.Context, in checkIn, c *call) (*checkOut, *Redactor, error) {
	if len(in.Names) == 0 {
		return nil, nil, errors.New("check secrets: no names given")
	}
	app, env, info, err := s.info(ctx, "check secrets", in.App, in.Env, c)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, x := range info.Secrets {
		have[x.Name] = true
	}
	out := &checkOut{App: app, Env: env, Present: []string{}, Missing: []string{}, Invalid: []string{}}
	for _, n := range dedup(in.Names) {
		switch {
		case !names.ValidSecret(n):
			out.Invalid = append(out.Invalid, n)
		case have[n]:
			out.Present = append(out.Present, n)
		default:
			out.Missing = append(out.Missing, n)
		}
	}
	if len(out.Invalid) > 0 {
		out.Rule = names.SecretRule
	}
	out.AllPresent = len(out.Missing) == 0 && len(out.Invalid) == 0
	c.names = append(slices.Clone(out.Present), out.Missing...) // the log names valid names only
	c.fields["missing"] = len(out.Missing)
	c.fields["invalid"] = len(out.Invalid)
	return out, nil, nil
}

// ---- set_secret_from_generator ----

type genIn struct {
	App    string `json:"app,omitempty"`
	Env    string `json:"env,omitempty"`
	Name   string `json:"name" jsonschema:"the secret's name, which is also its environment variable name, such as SESSION_SECRET"`
	Kind   string `json:"kind" jsonschema:"what to generate"`
	Length int    `json:"length,omitempty" jsonschema:"random bytes (hex, base64) or characters (alphanumeric), 16 to 512 (default 32); 36 or omitted for uuid"`
}

type genOut struct {
	App     string `json:"app"`
	Env     string `json:"env"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version uint64 `json:"version" jsonschema:"the secret's new version: 1 when it was created"`
	Created bool   `json:"env_created,omitempty" jsonschema:"the app or environment was created"`
}

func (s *server) setFromGenerator(ctx context.Context, in genIn, c *call) (*genOut, *Redactor, error) {
	app, env, err := s.scope("set secret", in.App, in.Env, true)
	if err != nil {
		return nil, nil, err
	}
	c.app, c.env, c.names = app, env, []string{in.Name}
	c.fields["kind"] = in.Kind
	if !s.opts.AllowWrites {
		return nil, nil, withHint(errors.New("set secret: writes are off"),
			"ask the user to restart the server with `ov mcp serve --allow-writes`, or to run `ov secret set` themselves")
	}
	if !names.ValidSecret(in.Name) {
		return nil, nil, withHint(fmt.Errorf("set secret: %q is not a valid secret name", in.Name), names.SecretRule)
	}
	length := in.Length
	switch {
	case in.Kind == localapi.KindUUID && length == 0:
	case length == 0:
		length = 32
	}
	if length < 0 {
		return nil, nil, fmt.Errorf("set secret: negative length %d", length)
	}
	if err := s.approve(ctx, &Approval{Tool: "set_secret_from_generator", App: app, Env: env, Names: []string{in.Name},
		Detail: fmt.Sprintf("set %s to a new random %s value (length %d)", in.Name, in.Kind, length)}, c); err != nil {
		return nil, nil, err
	}
	g, err := s.src.Generate(ctx, app, env, &localapi.Generate{Name: in.Name, Kind: in.Kind, Length: uint32(length), Create: true})
	if err != nil {
		return nil, nil, err
	}
	c.fields["version"] = g.Version
	return &genOut{App: app, Env: env, Name: in.Name, Kind: in.Kind, Version: g.Version, Created: g.Created}, nil, nil
}

// approve asks the approver, if there is one.
func (s *server) approve(ctx context.Context, a *Approval, c *call) error {
	if s.opts.Approve == nil {
		return nil
	}
	err := s.opts.Approve.Approve(ctx, a)
	c.fields["approved"] = err == nil
	if err != nil {
		return withHint(fmt.Errorf("%s: not approved: %w", a.Tool, err), "the user declined or did not answer on the terminal; do not retry without asking them")
	}
	return nil
}

func dedup(names []string) []string {
	out := []string{}
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func listOrNone(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return strings.Join(slices.Sorted(slices.Values(names)), ", ")
}
