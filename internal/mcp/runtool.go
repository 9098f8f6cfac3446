// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opaquevault/opaquevault/internal/childenv"
	ovnames "github.com/opaquevault/opaquevault/internal/names"
)

type runIn struct {
	App      string   `json:"app,omitempty"`
	Env      string   `json:"env,omitempty"`
	Secrets  []string `json:"secrets" jsonschema:"the secrets to add to the environment, by name ([] for none); see list_secrets"`
	Command  []string `json:"command" jsonschema:"the program and its arguments, such as [\"npm\", \"test\"]; run directly, not by a shell"`
	Cwd      string   `json:"cwd,omitempty" jsonschema:"the working directory (default: the server's, normally the project's)"`
	TimeoutS int      `json:"timeout_s,omitempty" jsonschema:"seconds before the command is killed"`
	Stdin    string   `json:"stdin,omitempty" jsonschema:"text for the command's standard input (default: none)"`
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

func (s *server) runWithSecrets(ctx context.Context, in runIn, c *call) (*runOut, *Redactor, error) {
	app, env, err := s.scope("run command", in.App, in.Env, true)
	if err != nil {
		return nil, nil, err
	}
	c.app, c.env = app, env
	if len(in.Command) == 0 {
		return nil, nil, errors.New(`run command: empty command: give the program and its arguments, such as ["npm", "test"]`)
	}
	c.fields["program"] = in.Command[0]
	names := dedup(in.Secrets)
	c.names = names
	timeout := DefaultTimeout
	if in.TimeoutS != 0 {
		timeout = time.Duration(in.TimeoutS) * time.Second
		if timeout < time.Second || timeout > MaxTimeout {
			return nil, nil, fmt.Errorf("run command: timeout_s %d out of range 1-%d", in.TimeoutS, int(MaxTimeout.Seconds()))
		}
	}
	if err := s.allowed(in.Command); err != nil {
		return nil, nil, err
	}
	dir, err := workDir(in.Cwd)
	if err != nil {
		return nil, nil, err
	}
	path, err := resolveProgram(in.Command[0], dir)
	if err != nil {
		return nil, nil, err
	}
	if err := s.isolation(); err != nil {
		return nil, nil, err
	}
	var invalid []string
	for _, n := range names {
		if !ovnames.ValidSecret(n) {
			invalid = append(invalid, strconv.Quote(n))
		}
	}
	if len(invalid) > 0 {
		return nil, nil, withHint(fmt.Errorf("run command: %s not a valid secret name", strings.Join(invalid, ", ")),
			ovnames.SecretRule)
	}
	if err := s.approve(ctx, &Approval{Tool: "run_with_secrets", App: app, Env: env, Names: names, Command: in.Command, Cwd: dir}, c); err != nil {
		return nil, nil, err
	}

	var values map[string][]byte
	if len(names) > 0 {
		values, err = s.src.Get(ctx, app, env, names)
		defer wipeValues(values)
		if err != nil {
			return nil, nil, err
		}
		var nul []string
		for _, n := range names {
			v, ok := values[n]
			if !ok {
				return nil, nil, fmt.Errorf("run command: the agent did not return secret %q", n)
			}
			if bytes.IndexByte(v, 0) >= 0 {
				nul = append(nul, strconv.Quote(n))
			}
		}
		for n, v := range values {
			if !slices.Contains(names, n) {
				clear(v)
				delete(values, n) // only what was asked for is injected
			}
		}
		if len(nul) > 0 {
			return nil, nil, withHint(fmt.Errorf("run command: secret %s of %s/%s holds a NUL byte, which an environment variable cannot", strings.Join(nul, ", "), app, env),
				"leave it out of secrets")
		}
	}
	red := NewRedactor(values)
	defer red.Wipe()

	spec := &execSpec{
		path: path, argv: in.Command, env: childenv.Build(s.childBase(), asStrings(values)), dir: dir, stdin: in.Stdin,
		timeout: timeout, grace: s.grace, keep: s.maxOutput + red.Margin(), iso: s.opts.Isolation,
	}
	res, err := runProcess(ctx, spec)
	if err != nil {
		return nil, red, err
	}
	defer res.stdout.wipe()
	defer res.stderr.wipe()
	c.fields["exit_code"] = res.exitCode
	if res.signal != "" {
		c.fields["signal"] = res.signal
	}
	if res.timedOut {
		c.fields["timed_out"] = true
	}

	out := &runOut{
		App: app, Env: env, Injected: append([]string{}, slices.Sorted(maps.Keys(values))...),
		ExitCode: res.exitCode, Signal: res.signal, TimedOut: res.timedOut, DurationMS: res.duration.Milliseconds(),
		StdoutBytes: res.stdout.total, StderrBytes: res.stderr.total,
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
			c.fields["withheld_"+st.name] = true
			text = []byte(fmt.Sprintf("[%s withheld: even after redaction it still contained a form of %s]", st.name, strings.Join(leaked, ", ")))
		}
		*st.dst = string(text)
		clear(text)
		if st.c.total > int64(s.maxOutput) {
			out.Notes = append(out.Notes, fmt.Sprintf("%s truncated: the command wrote %d bytes, the first %d are shown", st.name, st.c.total, s.maxOutput))
		}
	}
	if res.timedOut {
		out.Notes = append(out.Notes, fmt.Sprintf("timed out after %v: the command was killed", timeout))
	}
	if short := red.Short(); len(short) > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%s shorter than %d bytes: only exact occurrences are redacted, and the value may be guessable from the output",
			strings.Join(short, ", "), MinRedactLen))
	}
	if s.opts.Isolation.Unisolated {
		out.Notes = append(out.Notes, "not isolated: the user started the server with --allow-unisolated-commands")
	}
	if res.cancelled {
		return nil, red, errors.New("run command: cancelled by the client; the command was killed")
	}
	return out, red, nil
}

// asStrings converts the values for the environment: execve needs strings,
// which cannot be wiped.
func asStrings(values map[string][]byte) map[string]string {
	m := make(map[string]string, len(values))
	for n, v := range values {
		m[n] = string(v)
	}
	return m
}

// childBase is the environment a command starts from: the server's, less
// the variables that point at the user's session services (hidden in the
// sandbox anyway).
func (s *server) childBase() []string {
	base := s.opts.ChildEnv()
	if s.opts.Isolation.Unisolated {
		return base
	}
	return slices.DeleteFunc(slices.Clone(base), func(kv string) bool {
		n, _, _ := strings.Cut(kv, "=")
		return n == "DBUS_SESSION_BUS_ADDRESS"
	})
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
