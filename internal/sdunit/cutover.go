// SPDX-License-Identifier: Apache-2.0

package sdunit

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opaquevault/opaquevault/internal/dotenv"
)

// DropInName is the file name of the drop-in `ov systemd cutover` writes.
const DropInName = "50-opaquevault.conf"

// DropInPath is where the drop-in of unit goes (a path inside the root).
func DropInPath(unit string) string {
	return path.Join("/etc/systemd/system", unit+".d", DropInName)
}

// CredentialsSocket is where systemd asks the agent for LoadCredential= values
// (ov-agent-credentials.socket).
const CredentialsSocket = "/run/ov/credentials.sock"

// PolicyPath is the policy file of the credential provider for unit (a path inside the root).
func PolicyPath(unit string) string {
	return path.Join("/etc/ov/credentials.d", unit+".conf")
}

// Source is one variable the unit gives its service today: from Environment= or from an
// EnvironmentFile=. Value is nil when it could not be worked out (Err says why).
type Source struct {
	Name  string
	Value []byte
	From  string // "Environment=" or the file's path
	File  string // for Environment=: the unit file or drop-in that sets it
	Err   error
}

// Sources lists the variables the service gets from Environment= (specifiers expanded) and then
// from the environment files in order (files win over Environment=, a later file over an earlier
// one, as systemd.exec(5) says). files[i] holds the variables of s.EnvironmentFiles[i] (nil for an
// optional file that is missing).
func Sources(s *Service, sp Specifiers, files [][]Source) []Source {
	idx := map[string]int{}
	var out []Source
	set := func(src Source) {
		if i, ok := idx[src.Name]; ok {
			out[i] = src
			return
		}
		idx[src.Name] = len(out)
		out = append(out, src)
	}
	for _, a := range s.Environment {
		v, err := sp.Expand(a.Value)
		src := Source{Name: a.Name, From: "Environment=", File: a.Entry.File}
		if err != nil {
			src.Err = err
		} else {
			src.Value = []byte(v)
		}
		set(src)
	}
	for _, f := range files {
		for _, src := range f {
			set(src)
		}
	}
	return out
}

// Status is the result of comparing one variable with the vault.
type Status string

// The statuses. Only names and statuses are ever printed, never values.
const (
	Same    Status = "same"    // in the vault with the same value: moves to ov run
	Differs Status = "differs" // in the vault with another value: refused
	Missing Status = "missing" // from an EnvironmentFile= but not in the vault: refused
	Kept    Status = "kept"    // from Environment= and not in the vault: not a secret, stays
	Unknown Status = "unknown" // its value could not be worked out (a specifier): refused
)

// Var is one compared variable.
type Var struct {
	Name   string `json:"name"`
	From   string `json:"from"`
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	File   string `json:"file,omitempty"` // for Environment=: where it is written
}

// Compare compares each source with the vault; lookup returns a vault value (ok false: no such
// secret). Values are compared in constant time and never copied into the result.
func Compare(srcs []Source, lookup func(name string) ([]byte, bool)) []Var {
	out := make([]Var, 0, len(srcs))
	for _, s := range srcs {
		v := Var{Name: s.Name, From: s.From, File: s.File}
		vv, in := lookup(s.Name)
		switch {
		case !in && s.From == "Environment=":
			v.Status = Kept
		case !in:
			v.Status = Missing
		case s.Err != nil:
			v.Status, v.Detail = Unknown, s.Err.Error()
		case len(vv) == len(s.Value) && subtle.ConstantTimeCompare(vv, s.Value) == 1:
			v.Status = Same
		default:
			v.Status = Differs
		}
		out = append(out, v)
	}
	return out
}

// Refused returns the variables that stop a cut-over (differs, missing, unknown).
func Refused(vars []Var) []Var {
	var out []Var
	for _, v := range vars {
		if v.Status == Differs || v.Status == Missing || v.Status == Unknown {
			out = append(out, v)
		}
	}
	return out
}

// Plan says what the drop-in does.
type Plan struct {
	Unit        string
	App, Env    string
	OvPath      string // absolute path of ov
	MachineKey  string // --machine-key for ov run ("" with Credentials)
	Credentials bool   // LoadCredential= lines instead of ov run
	// FilesOnly, with Credentials: the program reads $CREDENTIALS_DIRECTORY itself, so ExecStart= is
	// left alone; otherwise it is wrapped in `ov env-from-credentials --`.
	FilesOnly bool
	Vars      []Var
}

// Moved returns the names that come from the vault after the cut-over, sorted.
func (p *Plan) Moved() []string {
	var out []string
	for _, v := range p.Vars {
		if v.Status == Same {
			out = append(out, v.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Kept returns the Environment= names that stay, in order.
func (p *Plan) Kept() []string {
	var out []string
	for _, v := range p.Vars {
		if v.Status == Kept {
			out = append(out, v.Name)
		}
	}
	return out
}

// ErrNothingToMove: the unit gets no variable that is in the vault.
var ErrNothingToMove = errors.New("the unit gets no variable that is in the vault")

// Render writes the drop-in for s (the unit's service without the drop-in). It refuses units it
// cannot wrap safely: an "@" prefix (argv[0] given apart), a command already run by ov, $VARIABLES
// of the command line that the cut-over takes out of systemd's environment.
func (p *Plan) Render(s *Service) (string, error) {
	moved := p.Moved()
	if len(moved) == 0 {
		return "", fmt.Errorf("cut over %s: %w", p.Unit, ErrNothingToMove)
	}
	isMoved := map[string]bool{}
	for _, n := range moved {
		isMoved[n] = true
	}
	if len(s.ExecStart) == 0 {
		return "", fmt.Errorf("cut over %s: the unit has no ExecStart=", p.Unit)
	}
	for _, x := range s.ExecStart {
		where := fmt.Sprintf("%s:%d", x.Entry.File, x.Entry.Line)
		if strings.Contains(x.Prefix, "@") {
			return "", fmt.Errorf("cut over %s: %s: ExecStart= has the \"@\" prefix (argv[0] apart from the path), which ov run cannot pass on", p.Unit, where)
		}
		if isOvRun(x) {
			return "", fmt.Errorf("cut over %s: %s: ExecStart= already runs %s run", p.Unit, where, x.Argv[0].Text)
		}
		for _, r := range x.VarRefs() {
			if isMoved[r] {
				return "", fmt.Errorf("cut over %s: %s: ExecStart= uses $%s, which would no longer be in systemd's environment; pass it another way (ov run gives it to the program)", p.Unit, where, r)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `ov systemd cutover` for %s; undo with `ov systemd rollback %s`.\n", p.Unit, p.Unit)
	fmt.Fprintf(&b, "# From the vault (%s/%s): %s\n", p.App, p.Env, strings.Join(moved, " "))
	var files []string
	for _, f := range s.EnvironmentFiles {
		files = append(files, f.Entry.Value)
	}
	if len(files) > 0 {
		fmt.Fprintf(&b, "# No longer read: EnvironmentFile=%s\n", strings.Join(files, " EnvironmentFile="))
	}
	var envMoved []string
	var keep []string
	for _, a := range s.Environment {
		if isMoved[a.Name] {
			if !containsStr(envMoved, a.Name) {
				envMoved = append(envMoved, a.Name)
			}
			continue
		}
		keep = append(keep, a.Raw)
	}
	if len(envMoved) > 0 {
		fmt.Fprintf(&b, "# Taken out of Environment=: %s\n", strings.Join(envMoved, " "))
	}
	if k := p.Kept(); len(k) > 0 {
		fmt.Fprintf(&b, "# Kept in Environment= (not in the vault): %s\n", strings.Join(k, " "))
	}
	if p.Credentials {
		// The agent serves the credentials: start it first, and wait until it has its key (READY=1).
		b.WriteString("[Unit]\nWants=ov-agent.service\nAfter=ov-agent.service\n\n")
	}
	b.WriteString("[Service]\n")
	if len(s.EnvironmentFiles) > 0 {
		b.WriteString("EnvironmentFile=\n")
	}
	if len(envMoved) > 0 {
		b.WriteString("Environment=\n")
		if len(keep) > 0 {
			fmt.Fprintf(&b, "Environment=%s\n", strings.Join(keep, " "))
		}
	}
	if p.Credentials {
		for _, n := range moved {
			fmt.Fprintf(&b, "LoadCredential=%s:%s\n", n, CredentialsSocket)
		}
		if p.FilesOnly {
			return b.String(), nil
		}
		b.WriteString("ExecStart=\n")
		for _, x := range s.ExecStart {
			fmt.Fprintf(&b, "ExecStart=%s%s env-from-credentials -- %s\n", x.Prefix, Quote(p.OvPath), x.Command)
		}
		return b.String(), nil
	}
	b.WriteString("ExecStart=\n")
	for _, x := range s.ExecStart {
		words := []string{Quote(p.OvPath), "run", "--app", Quote(p.App), "--env", Quote(p.Env)}
		if p.MachineKey != "" {
			words = append(words, "--machine-key", Quote(p.MachineKey))
		}
		words = append(words, "--secrets", Quote(strings.Join(moved, ",")), "--")
		fmt.Fprintf(&b, "ExecStart=%s%s %s\n", x.Prefix, strings.Join(words, " "), x.Command)
	}
	return b.String(), nil
}

// Policy is the credential provider's policy file for --credentials (the agent reads it; see
// docs/agent.md): app=, env= and secrets=, root-owned 0644.
func (p *Plan) Policy() string {
	return fmt.Sprintf("# Which secrets the ov credential provider may hand to %s (LoadCredential=).\n# Written by `ov systemd cutover --credentials`.\napp=%s\nenv=%s\nsecrets=%s\n",
		p.Unit, p.App, p.Env, strings.Join(p.Moved(), ","))
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// IsOvRun reports whether x runs `ov run` (a program named ov).
func IsOvRun(x *Exec) bool { return isOvRun(x) }

func isOvRun(x *Exec) bool {
	return len(x.Argv) >= 2 && filepath.Base(x.Argv[0].Text) == "ov" && x.Argv[1].Text == "run"
}

// Check applies the drop-in text at its place among the unit's drop-ins and verifies the result:
// no EnvironmentFile=, no moved name left in Environment=, every ExecStart= through ov run. A
// drop-in that sorts after ours and sets these again is named in the error.
func (p *Plan) Check(u *Unit, dropIn string) error {
	mine, err := Parse(DropInPath(u.Name), []byte(dropIn))
	if err != nil {
		return fmt.Errorf("check drop-in: %w", err)
	}
	var merged []Entry
	inserted := false
	var after []string
	for _, e := range u.Entries {
		if e.File != u.Path && !inserted && path.Base(e.File) > DropInName {
			merged = append(merged, mine...)
			inserted = true
		}
		if e.File != u.Path && path.Base(e.File) > DropInName && e.Section == "Service" &&
			(e.Key == "ExecStart" || e.Key == "EnvironmentFile" || e.Key == "Environment") && !containsStr(after, e.File) {
			after = append(after, e.File)
		}
		merged = append(merged, e)
	}
	if !inserted {
		merged = append(merged, mine...)
	}
	s, err := ServiceOf(merged)
	if err != nil {
		return err
	}
	bad := func(what string) error {
		if len(after) > 0 {
			return fmt.Errorf("cut over %s: %s after the drop-in, because %s sets it again (drop-ins apply in file-name order); move that setting into the unit file or rename the drop-in", p.Unit, what, strings.Join(after, ", "))
		}
		return fmt.Errorf("cut over %s: %s after the drop-in", p.Unit, what)
	}
	if len(s.EnvironmentFiles) > 0 {
		return bad("EnvironmentFile= would still be read")
	}
	moved := map[string]bool{}
	for _, n := range p.Moved() {
		moved[n] = true
	}
	for _, a := range s.Environment {
		if moved[a.Name] {
			return bad("Environment= would still set " + a.Name)
		}
	}
	switch {
	case !p.Credentials:
		for _, x := range s.ExecStart {
			if !isOvRun(x) && (len(x.Argv) < 2 || x.Argv[0].Text != p.OvPath || x.Argv[1].Text != "run") {
				return bad("ExecStart= would not run ov run")
			}
		}
	case !p.FilesOnly:
		for _, x := range s.ExecStart {
			if len(x.Argv) < 3 || x.Argv[0].Text != p.OvPath || x.Argv[1].Text != "env-from-credentials" || x.Argv[2].Text != "--" {
				return bad("ExecStart= would not run ov env-from-credentials")
			}
		}
	}
	return nil
}

// ReadEnvFiles reads each EnvironmentFile= of s under root in systemd's syntax (dotenv.Systemd),
// with specifiers expanded in its path. A missing optional ("-") file gives nil; a missing required
// one is an error, as systemd fails to start the unit. Values are the caller's to wipe.
func ReadEnvFiles(root string, s *Service, sp Specifiers) ([][]Source, error) {
	out := make([][]Source, len(s.EnvironmentFiles))
	for i, f := range s.EnvironmentFiles {
		p, err := sp.Expand(f.Path)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: EnvironmentFile=%s: %w", f.Entry.File, f.Entry.Line, f.Path, err)
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%s:%d: EnvironmentFile=%s is not an absolute path", f.Entry.File, f.Entry.Line, f.Path)
		}
		fh, err := os.Open(under(root, p))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && f.Optional {
				continue
			}
			return nil, fmt.Errorf("read EnvironmentFile=%s: %w", p, unwrapPath(err))
		}
		res, err := dotenv.Parse(fh, dotenv.Options{Format: dotenv.Systemd, Filename: p})
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("read EnvironmentFile=%s: %w", p, err)
		}
		for _, e := range res.Entries {
			out[i] = append(out[i], Source{Name: e.Name, Value: e.Value, From: p})
		}
	}
	return out, nil
}

// EnvFilePaths returns the EnvironmentFile= paths of s with specifiers expanded (those that cannot
// be expanded are left out), and whether each is optional.
func EnvFilePaths(s *Service, sp Specifiers) []EnvFile {
	var out []EnvFile
	for _, f := range s.EnvironmentFiles {
		if p, err := sp.Expand(f.Path); err == nil {
			f.Path = p
			out = append(out, f)
		}
	}
	return out
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Wipe clears the values of srcs.
func Wipe(files [][]Source) {
	for _, f := range files {
		for _, s := range f {
			clear(s.Value)
		}
	}
}

// RefusalError names every variable that stops the cut-over, with why, never a value.
func RefusalError(unit, app, env string, refused []Var) error {
	var parts []string
	for _, v := range refused {
		switch v.Status {
		case Differs:
			parts = append(parts, fmt.Sprintf("%s (from %s) differs from the vault's", v.Name, v.From))
		case Missing:
			parts = append(parts, fmt.Sprintf("%s (from %s) is not in the vault", v.Name, v.From))
		default:
			parts = append(parts, fmt.Sprintf("%s (from %s) cannot be compared: %s", v.Name, v.From, v.Detail))
		}
	}
	return fmt.Errorf("cut over %s: %s; %s/%s must hold every variable the unit gets, with the same value, and nothing was written",
		unit, strings.Join(parts, "; "), app, env)
}
