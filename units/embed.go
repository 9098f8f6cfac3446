// SPDX-License-Identifier: Apache-2.0

// Package units holds the agent's systemd unit templates and renders them:
// ov-agent.socket, ov-agent-credentials.socket and ov-agent.service (the
// system agent that `ov agent install` writes to /etc/systemd/system) and
// ov-agent-user.socket and ov-agent-user.service (the user agent of `ov agent start` under
// systemd --user).
//
// Rendering never produces a unit from a value that could change its meaning:
// values with control characters are refused, arguments of ExecStart= are
// quoted and have % and $ escaped, and other values have % escaped, as
// systemd.unit(5) and systemd.service(5) require.
package units

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"unicode"
)

// Files holds the templates (*.in).
//
//go:embed *.in
var Files embed.FS

// The units, by the name they are installed under.
const (
	AgentSocket      = "ov-agent.socket"
	AgentService     = "ov-agent.service"
	UserAgentSocket  = "ov-agent-user.socket"
	UserAgentService = "ov-agent-user.service"
)

// AgentCredentialsSocket is the system agent's credential provider socket
// (/run/ov/credentials.sock, root 0600).
const AgentCredentialsSocket = "ov-agent-credentials.socket"

// SystemUnits and UserUnits list the units of each agent.
var (
	SystemUnits = []string{AgentService, AgentSocket, AgentCredentialsSocket}
	UserUnits   = []string{UserAgentService, UserAgentSocket}
)

// Data fills the templates.
type Data struct {
	// Binary is the absolute path of ov for ExecStart=.
	Binary string
	// User is the User= and SocketUser= of the system agent.
	User string
	// App and Env are baked into the system agent's ExecStart=.
	App, Env string
	// Credential is the LoadCredential= id of the machine key, and
	// MachineKey the path it is loaded from.
	Credential string
	MachineKey string
	// Server, when set, is passed as --server.
	Server string
	// Socket is the system agent's ListenStream= path.
	Socket string
}

// ErrBadValue means a value cannot be put in a unit file safely.
var ErrBadValue = errors.New("value not allowed in a unit file")

// tmpl parses the templates on first use, not at every start of ov.
var tmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{
		"arg":  quoteArg,
		"spec": escapeSpecifiers,
	}).ParseFS(Files, "*.in"))
})

// Render returns the unit called name (one of the constants above) filled
// with d. Errors match [ErrBadValue] when a field holds a control character,
// or name the missing field.
func Render(name string, d Data) ([]byte, error) {
	for field, v := range map[string]string{
		"binary": d.Binary, "user": d.User, "app": d.App, "env": d.Env,
		"credential": d.Credential, "machine key": d.MachineKey, "server": d.Server, "socket": d.Socket,
	} {
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("render %s: %s %q: control character: %w", name, field, v, ErrBadValue)
		}
	}
	var b bytes.Buffer
	if err := tmpl().ExecuteTemplate(&b, name+".in", d); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// quoteArg makes s one ExecStart= argument: as is when made of safe
// characters, else double-quoted with \ and " escaped; % and $ are doubled
// either way (specifier and variable expansion).
func quoteArg(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

// escapeSpecifiers doubles % so systemd does not expand specifiers.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }
