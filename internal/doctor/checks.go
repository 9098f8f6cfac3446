// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// The agent's units, as `ov agent install` writes them.
const (
	AgentSocket  = "ov-agent.socket"
	AgentService = "ov-agent.service"
)

// AgentUnits checks that the agent's socket listens and its service has not failed (guide item 1).
// installed is false when ov-agent.socket has no unit file: the agent is optional.
func AgentUnits(ctx context.Context, sys Systemd) (r Result, installed bool) {
	const name = "agent"
	sock, err := sys.Unit(ctx, AgentSocket)
	if err != nil {
		return fail(name, fmt.Sprintf("cannot ask systemd about %s: %v", AgentSocket, err), "run ov doctor as root on a system booted with systemd"), false
	}
	if sock.LoadState == "not-found" {
		return skip(name, "ov-agent is not installed (only `ov mcp serve` needs it; `ov run --machine-key` does not)"), false
	}
	svc, err := sys.Unit(ctx, AgentService)
	if err != nil {
		return fail(name, fmt.Sprintf("cannot ask systemd about %s: %v", AgentService, err), ""), true
	}
	switch {
	case svc.ActiveState == "failed":
		return fail(name, AgentService+" has failed", "journalctl -u "+AgentService+" -n 50 (a missing key file, wrong permissions or owner); then: sudo systemctl restart "+AgentSocket), true
	case sock.ActiveState != "active":
		return fail(name, fmt.Sprintf("%s is %s, so nothing listens for the agent", AgentSocket, sock.ActiveState), "sudo systemctl enable --now "+AgentSocket), true
	}
	return pass(name, fmt.Sprintf("%s is active, %s is %s", AgentSocket, AgentService, svc.ActiveState)), true
}

// AgentEndpoint checks the rendezvous file (root-owned, trusted) and that the agent answers on the
// socket it names. A missing rendezvous is a failure only when the agent is installed.
func AgentEndpoint(ctx context.Context, rendezvous string, installed bool) Result {
	const name = "agent socket"
	ep, err := localapi.ReadRendezvous(rendezvous)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !installed:
		return skip(name, "no "+rendezvous+" (the agent is not installed)")
	case errors.Is(err, fs.ErrNotExist):
		return fail(name, rendezvous+" does not exist", "sudo ov agent install --machine-key KEY --app APP --env ENV --user USER --enable (it writes the rendezvous file)")
	case err != nil:
		d := filepath.Dir(rendezvous)
		return fail(name, err.Error(), "the rendezvous file and "+d+" must be root-owned and not writable by others: sudo chown root:root "+d+" "+rendezvous+" && sudo chmod 0755 "+d+" && sudo chmod 0644 "+rendezvous)
	}
	st, err := localapi.NewClient(ep).Status(ctx)
	if err != nil {
		return fail(name, fmt.Sprintf("the agent at %s does not answer: %v", ep.Socket, err), "systemctl status "+AgentSocket+" "+AgentService)
	}
	return pass(name, fmt.Sprintf("%s names %s; the agent answers (%s)", rendezvous, ep.Socket, st.Text()))
}

// UnitState checks that the unit exists and has not failed.
func UnitState(u *sd.UnitInfo) Result {
	name := "unit"
	switch {
	case u.LoadState != "loaded":
		return fail(name, fmt.Sprintf("%s is %s", u.Name, u.LoadState), "check the name: systemctl list-unit-files '*.service'")
	case u.ActiveState == "failed":
		return fail(name, u.Name+" has failed", "journalctl -u "+u.Name+" -n 50 shows why; fix what the checks below report, then: sudo systemctl restart "+u.Name)
	}
	return pass(name, fmt.Sprintf("%s is %s (%s)", u.Name, u.ActiveState, u.SubState))
}

// DaemonReload checks that systemd runs what the unit files say (guide item 4).
func DaemonReload(u *sd.UnitInfo) Result {
	const name = "daemon-reload"
	if u.NeedDaemonReload {
		return fail(name, u.Name+" changed on disk since systemd read it: the old ExecStart= and EnvironmentFile= are still in effect", "sudo systemctl daemon-reload && sudo systemctl restart "+u.Name)
	}
	return pass(name, "systemd runs the unit as its files say")
}

// EnvironmentFile checks that no EnvironmentFile= is in effect: after the cut-over the secrets come
// from the vault only.
func EnvironmentFile(u *sd.UnitInfo) Result {
	const name = "EnvironmentFile="
	if len(u.EnvironmentFiles) == 0 {
		return pass(name, "none in effect")
	}
	var ps []string
	for _, f := range u.EnvironmentFiles {
		p := f.Path
		if f.Optional {
			p = "-" + p
		}
		ps = append(ps, p)
	}
	fix := "sudo ov systemd cutover " + u.Name + " --app APP --env ENV --machine-key KEY"
	if u.NeedDaemonReload {
		fix = "sudo systemctl daemon-reload"
	}
	return fail(name, "still in effect: "+strings.Join(ps, " "), fix)
}

// ExecStart checks that the unit starts through `ov run` and that the ov binary it names exists
// (the guide's /usr/local/bin/ov when the package installed /usr/bin/ov). self is this ov.
func ExecStart(u *sd.UnitInfo, self string) (Result, *RunArgs) {
	const name = "ExecStart="
	for _, x := range u.ExecStart {
		argv := x.Argv
		if len(argv) > 0 {
			argv = append([]string{x.Path}, argv[1:]...)
		}
		r, ok := ParseRun(argv)
		if !ok {
			continue
		}
		fi, err := os.Stat(r.Ov)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			why := "does not exist"
			if err == nil {
				why = "is not an executable file"
			}
			return fail(name, fmt.Sprintf("runs %s, which %s", r.Ov, why),
				fmt.Sprintf("ov is installed as %s: put that path in ExecStart= (sudo systemctl edit --full %s), or run `sudo ov systemd cutover %s ...`, then sudo systemctl daemon-reload", self, u.Name, u.Name)), r
		}
		if r.App == "" || r.Env == "" {
			return fail(name, "runs ov run without --app and --env", "add --app APP --env ENV to ExecStart="), r
		}
		return pass(name, fmt.Sprintf("runs %s run --app %s --env %s -- %s", r.Ov, r.App, r.Env, r.Program)), r
	}
	return fail(name, u.Name+" does not start through ov run", "sudo ov systemd cutover "+u.Name+" --app APP --env ENV --machine-key KEY"), nil
}

// LookupUser resolves a unit's User= (empty: root) to a uid and home directory.
func LookupUser(name string) (uid int, home string, err error) {
	if name == "" {
		name = "root"
	}
	var u *user.User
	if _, perr := strconv.Atoi(name); perr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return 0, "", fmt.Errorf("look up user %q: %w", name, err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, "", fmt.Errorf("look up user %q: uid %q", name, u.Uid)
	}
	return uid, u.HomeDir, nil
}

// KeyFile checks the machine key file as `ov run` will read it when running as owner (guide item
// 2): the credentials package's rules (regular file, exactly 32 bytes, 0600 or 0400, one link, no
// symlink, safe directories), with the owner the unit's User=. On success it returns the key, which
// the caller wipes.
func KeyFile(path, owner string) (Result, *vault.MachineKey) {
	const name = "machine key"
	uid, _, err := LookupUser(owner)
	if err != nil {
		return fail(name, err.Error(), "create the user or fix User= in the unit"), nil
	}
	buf, err := credentials.ReadKeyFile(path, credentials.ReadOptions{}.WithOwner(uid))
	if err != nil {
		return fail(name, err.Error(), keyFix(err, path, owner)), nil
	}
	defer buf.Destroy()
	mk, err := vault.ParseMachineKeyFile(buf.Bytes())
	if err != nil {
		return fail(name, fmt.Sprintf("read machine key %s: %v", path, err), keyFix(credentials.ErrWrongSize, path, owner)), nil
	}
	who := owner
	if who == "" {
		who = "root"
	}
	return pass(name, fmt.Sprintf("%s: 32 bytes, owned by %s, mode 0600 or 0400, id %s", path, who, remote.MachineIDOf(mk))), mk
}

func keyFix(err error, path, owner string) string {
	if owner == "" {
		owner = "root"
	}
	switch {
	case errors.Is(err, credentials.ErrBadMode):
		return "sudo chmod 600 " + path
	case errors.Is(err, credentials.ErrWrongOwner):
		return "sudo chown " + owner + ": " + path + "   (ExecStart= runs as " + owner + ")"
	case errors.Is(err, credentials.ErrSymlink):
		return "point --machine-key at the real file, not a symbolic link"
	case errors.Is(err, credentials.ErrHardLinked):
		return "remove the other names of the file (find / -samefile " + path + ")"
	case errors.Is(err, credentials.ErrUnsafeDir):
		return "the directories above the key must be writable by root (and " + owner + ") only: sudo chown root:root " + filepath.Dir(path) + " && sudo chmod 0755 " + filepath.Dir(path)
	case errors.Is(err, fs.ErrNotExist):
		return "derive it as the account owner: ov auth derive-machine-key --app APP --env ENV --out " + path
	case errors.Is(err, fs.ErrPermission):
		return "run ov doctor as root (or as " + owner + ")"
	}
	return "re-derive it: ov auth derive-machine-key --app APP --env ENV --force --out " + path
}

// Server checks that the server answers /healthz.
func Server(ctx context.Context, c *api.Client) Result {
	const name = "server"
	if err := c.Health(ctx); err != nil {
		return fail(name, fmt.Sprintf("%s: %v", c.Server(), err), "is ov-server running? check server= in /etc/ov/config, or pass --server URL; without it ov run starts from its cache")
	}
	return pass(name, c.Server()+" answers")
}

// MaxSkew is the clock difference ov doctor accepts: grants are backdated 5 minutes, and every
// signature check compares times.
const MaxSkew = 2 * time.Minute

// Clock compares this machine's clock with the server's Date header.
func Clock(ctx context.Context, server string, now func() time.Time) Result {
	const name = "clock"
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return skip(name, "the server is not reached over HTTP; clock not compared")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/healthz", nil)
	if err != nil {
		return fail(name, err.Error(), "")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t0 := now()
	resp, err := hc.Do(req)
	if err != nil {
		return skip(name, "the server did not answer; clock not compared")
	}
	resp.Body.Close()
	t1 := now()
	st, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return skip(name, "the server sent no Date header; clock not compared")
	}
	mid := t0.Add(t1.Sub(t0) / 2)
	skew := mid.Sub(st)
	if skew < 0 {
		skew = -skew
	}
	if skew > MaxSkew+time.Second { // Date has a resolution of one second
		return fail(name, fmt.Sprintf("this clock and the server's differ by %s", skew.Round(time.Second)), "synchronize the clock: timedatectl set-ntp true (systemd-timesyncd)")
	}
	return pass(name, fmt.Sprintf("within %s of the server's", (skew+time.Second).Round(time.Second)))
}

// Grant reads app/env with the machine key exactly as `ov run --machine-key` does (grant verified,
// scope checked, manifest and records verified and decrypted, no cache) and checks that every name
// of --secrets exists (guide items 3 and 5).
func Grant(ctx context.Context, c *api.Client, mk *vault.MachineKey, app, env string, names []string) []Result {
	hw, _ := remote.OpenHighWater("")
	hw.Soft = true
	r := &remote.MachineReader{Client: c, Key: mk, HighWater: hw}
	e, _, err := r.Read(ctx, app, env)
	if err != nil {
		res := Result{Name: "grant", Status: Fail, Detail: err.Error()}
		switch {
		case errors.Is(err, remote.ErrOutOfScope):
			res.Fix = fmt.Sprintf("--app/--env must name what the key was derived for; or derive a key for %s/%s: ov auth derive-machine-key --app %s --env %s --out PATH", app, env, app, env)
		case errors.Is(err, remote.ErrMachineUnknown):
			res.Fix = "the key was revoked or replaced: ov auth derive-machine-key --app " + app + " --env " + env + " --force --out PATH"
		case errors.Is(err, remote.ErrAppNotFound), errors.Is(err, remote.ErrEnvNotFound):
			res.Fix = "ov app list and ov env list --app " + app + " show what exists; import first: ov secret import FILE --app " + app + " --env " + env
		case errors.Is(err, vault.ErrGrantExpired), errors.Is(err, vault.ErrGrantNotYetValid):
			res.Fix = "check the clock, or issue a new key: ov auth derive-machine-key --force"
		}
		return []Result{res}
	}
	defer e.Wipe()
	out := []Result{pass("grant", fmt.Sprintf("the key opens %s/%s: %d secret(s)", app, env, len(e.Secrets)))}
	if len(names) == 0 {
		out = append(out, pass("secrets", "no --secrets: ov run passes every secret of "+app+"/"+env))
		return out
	}
	var missing []string
	for _, n := range names {
		if _, ok := e.Lookup(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return append(out, fail("secrets", fmt.Sprintf("%s/%s has no %s (named in --secrets)", app, env, strings.Join(missing, ", ")),
			fmt.Sprintf("ov secret set NAME --app %s --env %s, or take the name out of --secrets", app, env)))
	}
	return append(out, pass("secrets", fmt.Sprintf("all %d name(s) of --secrets exist", len(names))))
}

// CacheDir is where `ov run` in the unit keeps its offline cache: $CACHE_DIRECTORY when the unit
// sets CacheDirectory=, else ~/.cache/ov of its user.
func CacheDir(u *sd.UnitInfo, home string) string {
	if len(u.CacheDirectory) > 0 {
		return filepath.Join("/var/cache", u.CacheDirectory[0])
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".cache", "ov")
}

// Cache reports the age of the machine's newest cached copy (what ov run starts from when the
// server is down). A missing cache is a warning: the next successful start writes it.
func Cache(dir string, mk *vault.MachineKey, now time.Time) Result {
	const name = "cache"
	if dir == "" {
		return warn(name, "the unit's user has no home and the unit no CacheDirectory=: nothing is cached for when the server is down", "add CacheDirectory=ov-UNIT to the unit")
	}
	d := filepath.Join(dir, "machine-"+remote.MachineIDOf(mk))
	ents, err := os.ReadDir(d)
	if err != nil {
		return warn(name, "no cached copy in "+dir+" yet: if the server is down when the unit starts, ov run fails (exit 10)", "start the unit once while the server is up")
	}
	var newest time.Time
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	if newest.IsZero() {
		return warn(name, "no cached copy in "+d+" yet", "start the unit once while the server is up")
	}
	return pass(name, fmt.Sprintf("cached copy in %s, %s old (ov run uses it when the server is down, up to --max-age)", d, now.Sub(newest).Round(time.Second)))
}
