// SPDX-License-Identifier: Apache-2.0

// Package agentinstall is what `sudo ov agent install` and
// `ov agent uninstall` do: write the system agent's units
// (/etc/systemd/system/ov-agent.service and ov-agent.socket), its D-Bus
// policy, and the rendezvous file /etc/ov/agent.socket; tighten /etc/ov to
// root:root 0755; and, with Enable, ask systemd over D-Bus to reload, enable
// and start the socket.
//
// Every file is replaced atomically (a temporary file in the same directory,
// fsynced, renamed, then the directory fsynced), all temporary files are
// written before the first rename, so a failure part-way leaves the previous
// files as they were; a second run with the same options changes nothing.
// It never touches the machine key file, never runs systemctl or any other
// program, and never writes outside Options.Root when Root is set.
package agentinstall

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/names"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/polkit"
	"github.com/opaquevault/opaquevault/units"
)

// PolicyDir holds the credential provider's per-unit policies (`ov systemd
// cutover --credentials` writes them), root:root 0755.
const PolicyDir = "/etc/ov/credentials.d"

// Paths on the target system.
const (
	UnitDir       = "/etc/systemd/system"
	BusPolicyDir  = "/etc/dbus-1/system.d"
	ConfigDir     = "/etc/ov"
	Rendezvous    = localapi.DefaultRendezvous
	DefaultBinary = "/usr/bin/ov"
	// DefaultCredential is the LoadCredential= id of the machine key.
	DefaultCredential = "ov-machine-key"
)

// ErrInvalid is wrapped by every error about the options themselves (the
// CLI's usage errors, exit code 2).
var ErrInvalid = errors.New("invalid agent install options")

// Options are the flags of `ov agent install`.
type Options struct {
	// Root, when set, is a directory standing for / : everything is written
	// under it, the user is looked up in ROOT/etc/passwd, and Enable is
	// ignored.
	Root string
	// App and Env (required) are baked into ExecStart=.
	App, Env string
	// User (required, never root) runs the agent and owns its socket.
	User string
	// MachineKey (required) is the absolute path of the 32-byte machine key,
	// loaded with LoadCredential=. The file is checked, never changed.
	MachineKey string
	// Binary is ov's absolute path for ExecStart=; default: the running
	// executable when it is /usr/bin/ov or /usr/local/bin/ov, else
	// /usr/bin/ov.
	Binary string
	// Server, when set, is baked into ExecStart= as --server.
	Server string
	// Credential is the LoadCredential= id (default DefaultCredential).
	Credential string
	// Enable asks systemd to reload, enable and start ov-agent.socket (and
	// restart the agent when its units changed).
	Enable bool
}

// File is one file the installer wrote or would have written.
type File struct {
	Path    string      // on the target system, e.g. /etc/ov/agent.socket
	Written string      // where it is on this machine (under Root)
	Mode    fs.FileMode // 0644 for every file, 0755 for /etc/ov
	Owner   string      // "root:root"
	Changed bool        // false when it was already exactly so
}

// Result says what Install or Uninstall did, for the CLI to print.
type Result struct {
	Files    []File // units, D-Bus policy, rendezvous, and /etc/ov itself
	Removed  []File // Uninstall only
	Binary   string
	UID, GID int
	Enabled  bool     // systemd was asked to enable and start the socket
	Warnings []string // things to tell the user that did not stop the install
}

// Changed reports whether any file was written or removed.
func (r *Result) Changed() bool {
	for _, f := range r.Files {
		if f.Changed {
			return true
		}
	}
	return len(r.Removed) > 0
}

// credName matches a credential name: [A-Za-z0-9_][A-Za-z0-9_.-]{0,63} (a function, not a regexp:
// a bounded repetition would cost ov milliseconds of start-up).
var credName = nameMatcher{}

type nameMatcher struct{}

func (nameMatcher) MatchString(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || i > 0 && (c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// account is a passwd entry.
type account struct {
	name     string
	uid, gid int
}

// Install writes the system agent's files (see the package documentation)
// and returns what it did. Errors wrap [ErrInvalid] for bad options,
// fs.ErrPermission when not run as root without Root, [sd.ErrNoSystemd]
// when Enable finds no systemd (the files are written by then), or the
// system error of the step that failed.
func Install(ctx context.Context, o Options) (*Result, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	res := &Result{Binary: o.Binary}
	if o.Root == "" && os.Geteuid() != 0 {
		return nil, fmt.Errorf("install agent: must run as root (sudo ov agent install …): %w", fs.ErrPermission)
	}
	acct, err := lookupUser(o.Root, o.User)
	if err != nil {
		return nil, err
	}
	if acct.uid == 0 {
		return nil, invalid("install agent: user %q has uid 0; the agent must not run as root", o.User)
	}
	res.UID, res.GID = acct.uid, acct.gid
	if err := o.checkBinary(res); err != nil {
		return nil, err
	}
	if err := o.checkKey(acct, res); err != nil {
		return nil, err
	}
	chown := os.Geteuid() == 0
	if !chown {
		res.Warnings = append(res.Warnings, "not running as root: files under "+o.Root+" keep your ownership")
	}

	data := units.Data{
		Binary: o.Binary, User: o.User, App: o.App, Env: o.Env,
		Credential: o.Credential, MachineKey: o.MachineKey, Server: o.Server,
		Socket: localapi.DefaultSystemSocket,
	}
	var plan []planned
	for _, name := range units.SystemUnits {
		b, err := units.Render(name, data)
		if err != nil {
			return nil, invalid("install agent: %v", err)
		}
		plan = append(plan, planned{path: filepath.Join(UnitDir, name), data: b})
	}
	bp, err := polkit.BusPolicy(o.User)
	if err != nil {
		return nil, invalid("install agent: %v", err)
	}
	plan = append(plan, planned{path: filepath.Join(BusPolicyDir, polkit.BusPolicyFile), data: bp})
	if rr, err := polkit.RestartRules(o.User, RestartDir); err == nil { // restart.go
		plan = append(plan, planned{path: filepath.Join(PolkitRulesDir, polkit.RestartRulesFile), data: rr})
	}
	rv := localapi.FormatRendezvous(&localapi.Endpoint{Socket: localapi.DefaultSystemSocket, ListenerUIDs: []uint32{0}})

	// Stage everything but the rendezvous, tighten /etc/ov (so that its
	// previous owner, the user of step 1 of the guide, can no longer touch
	// what is staged in it), stage the rendezvous, then rename all.
	w := &writer{root: o.Root, chown: chown}
	defer w.cleanup()
	for _, p := range plan {
		if err := w.stage(p.path, p.data); err != nil {
			return nil, err
		}
	}
	dirChanged, err := tightenDir(o.Root, ConfigDir, chown)
	if err != nil {
		return nil, err
	}
	if err := w.stage(Rendezvous, rv); err != nil {
		return nil, err
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, File{Path: ConfigDir, Written: under(o.Root, ConfigDir), Mode: fs.ModeDir | 0o755, Owner: "root:root", Changed: dirChanged})
	polChanged, err := tightenDir(o.Root, PolicyDir, chown)
	if err != nil {
		return nil, err
	}
	res.Files = append(res.Files, File{Path: PolicyDir, Written: under(o.Root, PolicyDir), Mode: fs.ModeDir | 0o755, Owner: "root:root", Changed: polChanged})
	res.Files = append(res.Files, w.files...)

	if o.Enable && o.Root == "" {
		socketChanged := w.changed(units.AgentSocket) || w.changed(units.AgentCredentialsSocket)
		if err := enable(ctx, socketChanged, w.changed(units.AgentService), w.changed(polkit.BusPolicyFile)); err != nil {
			return res, err
		}
		res.Enabled = true
	} else if o.Enable {
		res.Warnings = append(res.Warnings, "--root given: systemd was not asked to enable anything")
	}
	return res, nil
}

type planned struct {
	path string
	data []byte
}

func (o *Options) normalize() error {
	if o.Root != "" {
		r, err := filepath.Abs(o.Root)
		if err != nil {
			return invalid("install agent: --root: %v", err)
		}
		o.Root = r
	}
	switch {
	case o.App == "":
		return invalid("install agent: --app is required")
	case o.Env == "":
		return invalid("install agent: --env is required")
	case o.User == "":
		return invalid("install agent: --user is required")
	case o.User == "root":
		return invalid("install agent: --user root refused: the agent must run as the service's user")
	case o.MachineKey == "":
		return invalid("install agent: --machine-key is required")
	case !filepath.IsAbs(o.MachineKey):
		return invalid("install agent: --machine-key %q must be an absolute path", o.MachineKey)
	}
	var err error
	if o.App, err = names.NormalizeScope("app", o.App); err != nil {
		return invalid("install agent: --app: %v", err)
	}
	if o.Env, err = names.NormalizeScope("env", o.Env); err != nil {
		return invalid("install agent: --env: %v", err)
	}
	for flag, v := range map[string]string{"--app": o.App, "--env": o.Env, "--machine-key": o.MachineKey, "--binary": o.Binary, "--server": o.Server} {
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return invalid("install agent: %s contains a control character", flag)
		}
	}
	o.MachineKey = filepath.Clean(o.MachineKey)
	if o.Credential == "" {
		o.Credential = DefaultCredential
	}
	if !credName.MatchString(o.Credential) {
		return invalid("install agent: credential name %q not allowed", o.Credential)
	}
	if o.Server != "" && strings.ContainsAny(o.Server, " \t\"'\\") {
		return invalid("install agent: --server %q is not a URL", o.Server)
	}
	if o.Binary == "" {
		o.Binary = defaultBinary()
	}
	if !filepath.IsAbs(o.Binary) {
		return invalid("install agent: binary %q must be an absolute path", o.Binary)
	}
	o.Binary = filepath.Clean(o.Binary)
	return nil
}

// defaultBinary is the running executable when it is installed where a
// unit may point, else /usr/bin/ov.
func defaultBinary() string {
	exe, err := os.Executable()
	if err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		if exe == "/usr/bin/ov" || exe == "/usr/local/bin/ov" {
			return exe
		}
	}
	return DefaultBinary
}

// checkBinary: ExecStart= runs it with the machine key, so it and its
// directories must be root's and not writable by others. Under Root a
// missing binary is only a warning (an image being prepared).
func (o *Options) checkBinary(res *Result) error {
	p := under(o.Root, o.Binary)
	fi, err := os.Stat(p)
	if err != nil {
		if o.Root != "" && errors.Is(err, fs.ErrNotExist) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s does not exist under %s yet", o.Binary, o.Root))
			return nil
		}
		return fmt.Errorf("install agent: check binary %s: %w", o.Binary, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return invalid("install agent: binary %s is not an executable file", o.Binary)
	}
	for d := p; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("install agent: check binary %s: %w", o.Binary, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if (o.Root == "" || strings.HasPrefix(d, o.Root+"/")) && (st.Uid != 0 || fi.Mode().Perm()&0o022 != 0) {
			if o.Root != "" && os.Geteuid() != 0 {
				break // an unprivileged build root: ownership is fixed at packaging
			}
			return invalid("install agent: %s must be owned by root and not writable by group or others (it runs with the machine key)", d)
		}
		if d == "/" || d == o.Root || filepath.Dir(d) == d {
			break
		}
	}
	return nil
}

// checkKey looks at the machine key without opening it: a regular 32-byte
// file, no group or world bits. Another owner than the user is a warning
// (systemd reads it as root for LoadCredential=, but `ov run --machine-key`
// as the user would fail).
func (o *Options) checkKey(acct account, res *Result) error {
	p := under(o.Root, o.MachineKey)
	fi, err := os.Lstat(p)
	if err != nil {
		if o.Root != "" && errors.Is(err, fs.ErrNotExist) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("machine key %s does not exist under %s yet", o.MachineKey, o.Root))
			return nil
		}
		return fmt.Errorf("install agent: check machine key %s: %w (derive it first: ov auth derive-machine-key --out %s)", o.MachineKey, err, o.MachineKey)
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return invalid("install agent: machine key %s is a symbolic link; point at the real file", o.MachineKey)
	case !fi.Mode().IsRegular():
		return invalid("install agent: machine key %s is not a regular file", o.MachineKey)
	case fi.Mode().Perm()&0o077 != 0:
		return invalid("install agent: machine key %s has mode %04o; it must be 0600 or 0400 (chmod 600 %s)", o.MachineKey, fi.Mode().Perm(), o.MachineKey)
	case fi.Size() != 32:
		return invalid("install agent: machine key %s has %d bytes, want 32", o.MachineKey, fi.Size())
	}
	if int(st.Uid) != acct.uid {
		res.Warnings = append(res.Warnings, fmt.Sprintf("machine key %s is owned by uid %d, not %s (uid %d): `ov run --machine-key` as %s will refuse it",
			o.MachineKey, st.Uid, acct.name, acct.uid, acct.name))
	}
	return nil
}

// lookupUser finds name in ROOT/etc/passwd, or through the system's user
// database without Root.
func lookupUser(root, name string) (account, error) {
	if root == "" {
		u, err := user.Lookup(name)
		if err != nil {
			return account{}, invalid("install agent: user %q: %v", name, err)
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			return account{}, invalid("install agent: user %q has a non-numeric uid or gid", name)
		}
		return account{name: name, uid: uid, gid: gid}, nil
	}
	f, err := os.Open(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		return account{}, invalid("install agent: look up user %q: %v", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			return account{}, invalid("install agent: user %q has a malformed passwd entry", name)
		}
		return account{name: name, uid: uid, gid: gid}, nil
	}
	if err := sc.Err(); err != nil {
		return account{}, fmt.Errorf("install agent: read %s: %w", f.Name(), err)
	}
	return account{}, invalid("install agent: no user %q in %s", name, f.Name())
}

func under(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}

// enable does what the guide says --enable does (`systemctl daemon-reload &&
// systemctl enable --now ov-agent`), over D-Bus: reload, enable the service
// and its socket, restart them if their units changed, and start the service
// (and with it the socket), so that the key is loaded and checked now and at
// every boot.
func enable(ctx context.Context, socketChanged, serviceChanged, busChanged bool) error {
	m, err := sd.SystemManager(ctx)
	if err != nil {
		return fmt.Errorf("enable agent: %w (files are written; run: systemctl daemon-reload && systemctl enable --now %s %s %s)", err, units.AgentService, units.AgentSocket, units.AgentCredentialsSocket)
	}
	defer m.Close()
	if err := m.Reload(ctx); err != nil {
		return fmt.Errorf("enable agent: %w", err)
	}
	if err := m.Enable(ctx, units.AgentService, units.AgentSocket, units.AgentCredentialsSocket); err != nil {
		return fmt.Errorf("enable agent: %w", err)
	}
	switch {
	case socketChanged:
		// A new SocketUser= or path needs a new socket.
		if err := m.Stop(ctx, units.AgentService); err != nil {
			return fmt.Errorf("enable agent: %w", err)
		}
		for _, u := range []string{units.AgentSocket, units.AgentCredentialsSocket} {
			if err := m.Stop(ctx, u); err != nil {
				return fmt.Errorf("enable agent: %w", err)
			}
		}
	case serviceChanged || busChanged:
		if err := m.TryRestart(ctx, units.AgentService); err != nil {
			return fmt.Errorf("enable agent: %w", err)
		}
	}
	for _, u := range []string{units.AgentSocket, units.AgentCredentialsSocket} {
		if err := m.Start(ctx, u); err != nil {
			return fmt.Errorf("enable agent: %w", err)
		}
	}
	if err := m.Start(ctx, units.AgentService); err != nil {
		return fmt.Errorf("enable agent: %w (journalctl -u %s says why)", err, units.AgentService)
	}
	return nil
}

// sameFile reports whether path is a regular file (not a link) with exactly
// data, perm and owner.
func sameFile(path string, data []byte, perm fs.FileMode, uid, gid int, checkOwner bool) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != perm || fi.Size() != int64(len(data)) {
		return false
	}
	if st := fi.Sys().(*syscall.Stat_t); checkOwner && (int(st.Uid) != uid || int(st.Gid) != gid) {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && bytes.Equal(b, data)
}
