// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agentinstall_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/internal/agentinstall"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/polkit"
	"github.com/opaquevault/opaquevault/units"
)

const deployUID = 1001

var keyBytes = bytes.Repeat([]byte{0x5a}, 32)

// machine is a root directory as the guide leaves it after steps 1 and 2:
// /etc/ov owned by the user 0700 with the user's 0600 key in it, ov in
// /usr/bin, and users in /etc/passwd. It lives under /run, so that its
// ancestors are root's and the rendezvous check of the client applies.
func machine(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create files owned by root and by the service user")
	}
	root, err := os.MkdirTemp("/run", "ov-install-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc", "usr/bin", "etc/systemd/system", "etc/dbus-1/system.d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(root, "etc/passwd"),
		"root:x:0:0:root:/root:/bin/sh\ndeploy:x:1001:1001::/home/deploy:/bin/sh\ndeploy2:x:1002:1002::/home/deploy2:/bin/sh\ntoor:x:0:0::/:/bin/sh\n", 0o644, 0)
	write(t, filepath.Join(root, "usr/bin/ov"), "#!/bin/sh\n", 0o755, 0)
	ov := filepath.Join(root, "etc/ov")
	if err := os.Mkdir(ov, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ov, deployUID, deployUID); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(ov, "myapp.key"), string(keyBytes), 0o600, deployUID)
	return root
}

func write(t *testing.T, p, data string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func opts(root string) agentinstall.Options {
	return agentinstall.Options{
		Root: root, App: "myapp", Env: "production", User: "deploy",
		MachineKey: "/etc/ov/myapp.key", Binary: "/usr/bin/ov", Enable: true,
	}
}

type meta struct {
	mode     fs.FileMode
	uid, gid uint32
	ino      uint64
	mtime    syscall.Timespec
	data     []byte
}

func stat(t *testing.T, p string) meta {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	m := meta{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, ino: st.Ino, mtime: st.Mtim}
	if fi.Mode().IsRegular() {
		m.data, _ = os.ReadFile(p)
	}
	return m
}

var installed = []string{
	"/etc/systemd/system/ov-agent.service",
	"/etc/systemd/system/ov-agent.socket",
	"/etc/systemd/system/ov-agent-credentials.socket",
	"/etc/dbus-1/system.d/com.opaquevault.Agent1.conf",
	"/etc/polkit-1/rules.d/60-opaquevault-agent-restart.rules",
	"/etc/ov/agent.socket",
}

// The guide's final state after step 3.
func TestInstallFinalState(t *testing.T) {
	root := machine(t)
	keyBefore := stat(t, filepath.Join(root, "etc/ov/myapp.key"))
	res, err := agentinstall.Install(context.Background(), opts(root))
	if err != nil {
		t.Fatal(err)
	}
	if res.UID != deployUID || res.Enabled || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "--root") }) {
		t.Errorf("result %+v", res)
	}

	if m := stat(t, filepath.Join(root, "etc/ov")); m.mode != fs.ModeDir|0o755 || m.uid != 0 || m.gid != 0 {
		t.Errorf("/etc/ov: %v %d:%d, want root:root 0755", m.mode, m.uid, m.gid)
	}
	for _, p := range installed {
		m := stat(t, filepath.Join(root, p))
		if m.mode != 0o644 || m.uid != 0 || m.gid != 0 {
			t.Errorf("%s: %v %d:%d, want root:root 0644", p, m.mode, m.uid, m.gid)
		}
	}
	if got := string(stat(t, filepath.Join(root, "etc/ov/agent.socket")).data); got != "version=1 socket=/run/ov/agent.sock listener_uids=0\n" {
		t.Errorf("rendezvous %q", got)
	}
	// The client's own checks accept it.
	ep, err := localapi.ReadRendezvous(filepath.Join(root, "etc/ov/agent.socket"))
	if err != nil || ep.Socket != "/run/ov/agent.sock" || !ep.System {
		t.Errorf("ReadRendezvous: %+v, %v", ep, err)
	}
	keyAfter := stat(t, filepath.Join(root, "etc/ov/myapp.key"))
	if !bytes.Equal(keyAfter.data, keyBytes) || keyAfter.mode != 0o600 || keyAfter.uid != deployUID || keyAfter.gid != deployUID ||
		keyAfter.ino != keyBefore.ino || keyAfter.mtime != keyBefore.mtime {
		t.Errorf("machine key touched: %+v → %+v", keyBefore, keyAfter)
	}

	d := units.Data{Binary: "/usr/bin/ov", User: "deploy", App: "myapp", Env: "production", Credential: "ov-machine-key",
		MachineKey: "/etc/ov/myapp.key", Socket: "/run/ov/agent.sock"}
	for _, n := range units.SystemUnits {
		want, _ := units.Render(n, d)
		if got := stat(t, filepath.Join(root, "etc/systemd/system", n)).data; !bytes.Equal(got, want) {
			t.Errorf("%s:\n%s\nwant\n%s", n, got, want)
		}
	}
	svc := string(stat(t, filepath.Join(root, "etc/systemd/system/ov-agent.service")).data)
	for _, want := range []string{"User=deploy\n", "RuntimeDirectory=ov-agent\n", "LoadCredential=ov-machine-key:/etc/ov/myapp.key\n",
		"ExecStart=/usr/bin/ov agent serve --app myapp --env production --machine-key-credential ov-machine-key\n"} {
		if !strings.Contains(svc, want) {
			t.Errorf("ov-agent.service lacks %q", want)
		}
	}
	bp, _ := polkit.BusPolicy("deploy")
	if got := stat(t, filepath.Join(root, "etc/dbus-1/system.d/com.opaquevault.Agent1.conf")).data; !bytes.Equal(got, bp) {
		t.Error("bus policy differs")
	}
	var paths []string
	for _, f := range res.Files {
		if !f.Changed {
			t.Errorf("%s not reported as changed", f.Path)
		}
		paths = append(paths, f.Path)
	}
	if want := append([]string{"/etc/ov", "/etc/ov/credentials.d"}, installed...); strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("reported %v, want %v", paths, want)
	}
	// The credential provider's policy directory: root's, 0755, kept by uninstall.
	if fi, err := os.Lstat(filepath.Join(root, "etc/ov/credentials.d")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 ||
		fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("/etc/ov/credentials.d: %v %v", fi, err)
	}
	// No temporary files left.
	for _, d := range []string{"etc/ov", "etc/systemd/system", "etc/dbus-1/system.d"} {
		es, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("left over in %s: %s", d, e.Name())
			}
		}
	}
}

// A second run with the same options changes nothing, not even mtimes.
func TestInstallIdempotent(t *testing.T) {
	root := machine(t)
	ctx := context.Background()
	if _, err := agentinstall.Install(ctx, opts(root)); err != nil {
		t.Fatal(err)
	}
	before := map[string]meta{}
	for _, p := range append([]string{"/etc/ov"}, installed...) {
		before[p] = stat(t, filepath.Join(root, p))
	}
	res, err := agentinstall.Install(ctx, opts(root))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Errorf("second run changed files: %+v", res.Files)
	}
	for p, b := range before {
		a := stat(t, filepath.Join(root, p))
		if a.ino != b.ino || a.mtime != b.mtime || !bytes.Equal(a.data, b.data) || a.mode != b.mode {
			t.Errorf("%s changed on the second run", p)
		}
	}
	// A file changed by hand is put back.
	svc := filepath.Join(root, "etc/systemd/system/ov-agent.service")
	write(t, svc, "edited\n", 0o666, 0)
	if res, err := agentinstall.Install(ctx, opts(root)); err != nil || !res.Changed() {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	if a := stat(t, svc); !bytes.Equal(a.data, before["/etc/systemd/system/ov-agent.service"].data) || a.mode != 0o644 {
		t.Error("hand-edited unit not restored")
	}
}

// A failure part-way (a target directory that cannot be written) leaves
// every previous file as it was and no temporary file behind.
func TestInstallFailureKeepsOldFiles(t *testing.T) {
	for _, inject := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"read-only mount", func(t *testing.T, dir string) {
			if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
				t.Skipf("skipping: cannot bind-mount: %v", err)
			}
			t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
			if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
				t.Skipf("skipping: cannot remount read-only: %v", err)
			}
		}},
		{"file in place of the directory", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			write(t, dir, "not a directory\n", 0o644, 0)
		}},
	} {
		t.Run(inject.name, func(t *testing.T) {
			root := machine(t)
			ctx := context.Background()
			if _, err := agentinstall.Install(ctx, opts(root)); err != nil {
				t.Fatal(err)
			}
			before := map[string]meta{}
			for _, p := range installed {
				before[p] = stat(t, filepath.Join(root, p))
			}
			// New user and env: all four files would change; the third
			// (the D-Bus policy) cannot be written.
			o := opts(root)
			o.User, o.Env = "deploy2", "staging"
			write(t, filepath.Join(root, "etc/ov/myapp.key"), string(keyBytes), 0o600, 1002)
			busDir := filepath.Join(root, "etc/dbus-1/system.d")
			saved := before["/etc/dbus-1/system.d/com.opaquevault.Agent1.conf"]
			inject.setup(t, busDir)
			_, err := agentinstall.Install(ctx, o)
			if err == nil {
				t.Fatal("install succeeded despite the injected failure")
			}
			t.Logf("failed as expected: %v", err)
			for _, p := range installed {
				if strings.HasPrefix(p, "/etc/dbus-1/") {
					continue
				}
				a := stat(t, filepath.Join(root, p))
				if !bytes.Equal(a.data, before[p].data) || a.ino != before[p].ino {
					t.Errorf("%s was replaced by a failed install", p)
				}
			}
			if inject.name == "read-only mount" {
				if a := stat(t, filepath.Join(busDir, polkit.BusPolicyFile)); !bytes.Equal(a.data, saved.data) {
					t.Error("bus policy changed")
				}
			}
			es, _ := os.ReadDir(filepath.Join(root, "etc/systemd/system"))
			for _, e := range es {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file left: %s", e.Name())
				}
			}
		})
	}
}

func TestInstallRefuses(t *testing.T) {
	root := machine(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*agentinstall.Options)
		want string
	}{
		{"no app", func(o *agentinstall.Options) { o.App = "" }, "--app is required"},
		{"no env", func(o *agentinstall.Options) { o.Env = "" }, "--env is required"},
		{"no user", func(o *agentinstall.Options) { o.User = "" }, "--user is required"},
		{"user root", func(o *agentinstall.Options) { o.User = "root" }, "--user root refused"},
		{"user with uid 0", func(o *agentinstall.Options) { o.User = "toor" }, "uid 0"},
		{"unknown user", func(o *agentinstall.Options) { o.User = "nosuch" }, `no user "nosuch"`},
		{"no key", func(o *agentinstall.Options) { o.MachineKey = "" }, "--machine-key is required"},
		{"relative key", func(o *agentinstall.Options) { o.MachineKey = "etc/ov/myapp.key" }, "absolute path"},
		{"newline in app", func(o *agentinstall.Options) { o.App = "a\nExecStartPre=/bin/sh" }, "use letters, digits"}, // internal/names refuses it before the unit-file check
		{"bad credential name", func(o *agentinstall.Options) { o.Credential = "a/b" }, "credential name"},
		{"relative binary", func(o *agentinstall.Options) { o.Binary = "ov" }, "absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(root)
			tc.edit(&o)
			_, err := agentinstall.Install(ctx, o)
			if !errors.Is(err, agentinstall.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
	key := filepath.Join(root, "etc/ov/myapp.key")
	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"world-readable key", func() { write(t, key, string(keyBytes), 0o644, deployUID) }, "mode 0644"},
		{"short key", func() { write(t, key, "short", 0o600, deployUID) }, "has 5 bytes"},
		{"symlinked key", func() {
			os.Remove(key)
			write(t, key+".real", string(keyBytes), 0o600, deployUID)
			if err := os.Symlink(key+".real", key); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"group-writable binary", func() {
			os.Remove(key)
			write(t, key, string(keyBytes), 0o600, deployUID)
			write(t, filepath.Join(root, "usr/bin/ov"), "#!/bin/sh\n", 0o775, 0)
		}, "must be owned by root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			_, err := agentinstall.Install(ctx, opts(root))
			if !errors.Is(err, agentinstall.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
	if !bytes.Equal(stat(t, filepath.Join(root, "etc/ov")).data, nil) || stat(t, filepath.Join(root, "etc/ov")).uid != deployUID {
		t.Error("a refused install changed /etc/ov")
	}
}

// /etc/ov as a symbolic link (to somewhere the user controls) is refused.
func TestInstallRefusesSymlinkedConfigDir(t *testing.T) {
	root := machine(t)
	ov := filepath.Join(root, "etc/ov")
	if err := os.Rename(ov, ov+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ov+".real", ov); err != nil {
		t.Fatal(err)
	}
	o := opts(root)
	o.MachineKey = "/etc/ov.real/myapp.key"
	if _, err := agentinstall.Install(context.Background(), o); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("symlinked /etc/ov: %v", err)
	}
	for _, p := range installed[:3] {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s written although the install failed", p)
		}
	}
}

func TestUninstall(t *testing.T) {
	root := machine(t)
	ctx := context.Background()
	if _, err := agentinstall.Install(ctx, opts(root)); err != nil {
		t.Fatal(err)
	}
	res, err := agentinstall.Uninstall(ctx, agentinstall.UninstallOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != len(installed) {
		t.Errorf("removed %+v", res.Removed)
	}
	for _, p := range installed {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if m := stat(t, filepath.Join(root, "etc/ov/myapp.key")); !bytes.Equal(m.data, keyBytes) {
		t.Error("uninstall touched the machine key")
	}
	if res, err := agentinstall.Uninstall(ctx, agentinstall.UninstallOptions{Root: root}); err != nil || res.Changed() {
		t.Errorf("second uninstall: %+v, %v", res, err)
	}
}

func TestInstallUser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "systemd", "user")
	res, err := agentinstall.InstallUser(context.Background(), agentinstall.UserOptions{Dir: dir, Binary: "/usr/local/bin/ov"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 {
		t.Errorf("files %+v", res.Files)
	}
	b, err := os.ReadFile(filepath.Join(dir, units.UserAgentService))
	if err != nil || !strings.Contains(string(b), "ExecStart=/usr/local/bin/ov agent serve --user-mode\n") {
		t.Errorf("user service: %v\n%s", err, b)
	}
	if fi, err := os.Stat(filepath.Join(dir, units.UserAgentSocket)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("user socket unit: %v, %v", fi, err)
	}
	if res, err := agentinstall.InstallUser(context.Background(), agentinstall.UserOptions{Dir: dir, Binary: "/usr/local/bin/ov"}); err != nil || res.Changed() {
		t.Errorf("second run: %+v, %v", res, err)
	}
}
