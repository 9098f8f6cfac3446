// SPDX-License-Identifier: Apache-2.0

// Package doctor runs the checks of the user guide's Troubleshooting list for `ov doctor`: the
// agent's units and socket, the rendezvous file, the machine key file against the unit's User=,
// the unit's ExecStart= (does it run an ov that exists), a pending daemon-reload, an
// EnvironmentFile= still in effect, the server, the key's grant, the secrets the unit names, the
// offline cache and the clock. Each check is one small function returning a [Result] with the fix
// to print; none re-implements a rule that another package owns (credentials checks key files,
// localapi the rendezvous file, remote the grant and the secrets). Results never hold a secret
// value.
package doctor

import (
	"context"
	"strings"

	"github.com/opaquevault/opaquevault/internal/sd"
)

// Status of one check.
type Status string

// The statuses: only Fail makes `ov doctor` exit non-zero.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Result is the outcome of one check.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Mark is the character printed before a result.
func (r Result) Mark() string {
	switch r.Status {
	case Pass:
		return "✓"
	case Fail:
		return "✗"
	case Warn:
		return "!"
	}
	return "-"
}

func pass(name, detail string) Result { return Result{Name: name, Status: Pass, Detail: detail} }
func fail(name, detail, fix string) Result {
	return Result{Name: name, Status: Fail, Detail: detail, Fix: fix}
}
func warn(name, detail, fix string) Result {
	return Result{Name: name, Status: Warn, Detail: detail, Fix: fix}
}
func skip(name, detail string) Result { return Result{Name: name, Status: Skip, Detail: detail} }

// Systemd reads units from the service manager. *sd.Manager implements it over D-Bus.
type Systemd interface {
	Unit(ctx context.Context, name string) (*sd.UnitInfo, error)
}

// Failed counts the failed results.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

// RunArgs is what an `ov run` command line of a unit says.
type RunArgs struct {
	Ov            string // the ov binary as ExecStart= names it
	App, Env      string
	MachineKey    string
	KeyCredential string
	Secrets       []string
	Server        string
	Program       string
}

// ParseRun reads an `ov run` argv (argv[0] the ov binary). It reports false when argv does not run
// `ov run`. Both --flag value and --flag=value are read; the program follows "--".
func ParseRun(argv []string) (*RunArgs, bool) {
	if len(argv) < 2 || baseName(argv[0]) != "ov" && !strings.HasSuffix(argv[0], "/ov") || argv[1] != "run" {
		return nil, false
	}
	r := &RunArgs{Ov: argv[0]}
	for i := 2; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			if i+1 < len(argv) {
				r.Program = argv[i+1]
			}
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") {
			if r.Program == "" && !strings.HasPrefix(a, "-") {
				r.Program = a
				break
			}
			continue
		}
		takes := map[string]*string{"app": &r.App, "env": &r.Env, "machine-key": &r.MachineKey, "machine-key-credential": &r.KeyCredential, "server": &r.Server}
		var secrets string
		if name == "secrets" {
			takes["secrets"] = &secrets
		}
		dst, ok := takes[name]
		if !ok {
			if !hasVal && (name == "max-age" || name == "config" || name == "password-file") {
				i++
			}
			continue
		}
		if !hasVal && i+1 < len(argv) {
			i++
			val = argv[i]
		}
		*dst = val
		if name == "secrets" {
			for _, s := range strings.Split(secrets, ",") {
				if s = strings.TrimSpace(s); s != "" {
					r.Secrets = append(r.Secrets, s)
				}
			}
		}
	}
	return r, true
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
