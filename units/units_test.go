// SPDX-License-Identifier: Apache-2.0

package units_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/opaquevault/opaquevault/units"
)

var data = units.Data{
	Binary: "/usr/bin/ov", User: "deploy", App: "myapp", Env: "production",
	Credential: "ov-machine-key", MachineKey: "/etc/ov/myapp.key", Socket: "/run/ov/agent.sock",
}

func render(t *testing.T, name string, d units.Data) []byte {
	t.Helper()
	b, err := units.Render(name, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// options parses a unit with go-systemd's parser into section → name →
// values.
func options(t *testing.T, b []byte) map[string]map[string][]string {
	t.Helper()
	opts, err := unit.DeserializeOptions(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string][]string{}
	for _, o := range opts {
		if m[o.Section] == nil {
			m[o.Section] = map[string][]string{}
		}
		m[o.Section][o.Name] = append(m[o.Section][o.Name], o.Value)
	}
	return m
}

// hardening every agent service must have.
var hardening = map[string]string{
	"Type":                    "notify",
	"NoNewPrivileges":         "yes",
	"ProtectSystem":           "strict",
	"ProtectHome":             "read-only",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"MemoryDenyWriteExecute":  "yes",
	"MemorySwapMax":           "0",
	"LimitCORE":               "0",
	"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	"CapabilityBoundingSet":   "",
	"RestrictNamespaces":      "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"SystemCallArchitectures": "native",
	"UMask":                   "0077",
	"ExecReload":              "/bin/kill -HUP $MAINPID",
}

func TestSystemUnits(t *testing.T) {
	svc := options(t, render(t, units.AgentService, data))
	s := svc["Service"]
	want := map[string]string{
		"User":               "deploy",
		"RuntimeDirectory":   "ov-agent",
		"LoadCredential":     "ov-machine-key:/etc/ov/myapp.key",
		"ExecStart":          "/usr/bin/ov agent serve --app myapp --env production --machine-key-credential ov-machine-key",
		"LimitMEMLOCK":       "64M",
		"ProtectProc":        "invisible",
		"PrivateUsers":       "yes",
		"WatchdogSec":        "30s",
		"NotifyAccess":       "main",
		"StateDirectoryMode": "0700",
	}
	for k, v := range hardening {
		want[k] = v
	}
	for k, v := range want {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("ov-agent.service %s=%q, want %q", k, got, v)
		}
	}
	if sc := s["SystemCallFilter"]; len(sc) != 2 || sc[0] != "@system-service" || sc[1] != "~@privileged" {
		t.Errorf("SystemCallFilter=%q", sc)
	}
	// Enabled itself (the guide's `systemctl enable --now ov-agent`), and its
	// socket with it.
	if got := svc["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("ov-agent.service WantedBy=%q", got)
	}
	if got := svc["Install"]["Also"]; len(got) != 1 || got[0] != "ov-agent.socket ov-agent-credentials.socket" {
		t.Errorf("ov-agent.service Also=%q", got)
	}
	if r := svc["Unit"]["Requires"]; len(r) != 1 || r[0] != "ov-agent.socket" {
		t.Errorf("Requires=%q", r)
	}

	sock := options(t, render(t, units.AgentSocket, data))
	for k, v := range map[string]string{
		"ListenStream": "/run/ov/agent.sock", "SocketUser": "deploy", "SocketMode": "0600",
		"DirectoryMode": "0755", "FileDescriptorName": "agent", "Accept": "no",
	} {
		if got := sock["Socket"][k]; len(got) != 1 || got[0] != v {
			t.Errorf("ov-agent.socket %s=%q, want %q", k, got, v)
		}
	}
	if got := sock["Install"]["WantedBy"]; len(got) != 1 || got[0] != "sockets.target" {
		t.Errorf("WantedBy=%q", got)
	}

	// The credential provider's socket: root's alone, named for the agent,
	// and passed to the agent with its own socket.
	cs := options(t, render(t, units.AgentCredentialsSocket, data))
	for k, v := range map[string]string{
		"ListenStream": "/run/ov/credentials.sock", "SocketUser": "root", "SocketGroup": "root", "SocketMode": "0600",
		"FileDescriptorName": "credentials", "Service": "ov-agent.service", "Accept": "no",
	} {
		if got := cs["Socket"][k]; len(got) != 1 || got[0] != v {
			t.Errorf("ov-agent-credentials.socket %s=%q, want %q", k, got, v)
		}
	}
	if got := cs["Install"]["WantedBy"]; len(got) != 1 || got[0] != "sockets.target" {
		t.Errorf("ov-agent-credentials.socket WantedBy=%q", got)
	}
	if got := s["Sockets"]; len(got) != 1 || got[0] != "ov-agent.socket ov-agent-credentials.socket" {
		t.Errorf("ov-agent.service Sockets=%q", got)
	}
}

func TestUserUnits(t *testing.T) {
	svc := options(t, render(t, units.UserAgentService, units.Data{Binary: "/usr/bin/ov"}))
	for k, v := range hardening {
		if got := svc["Service"][k]; len(got) != 1 || got[0] != v {
			t.Errorf("ov-agent-user.service %s=%q, want %q", k, got, v)
		}
	}
	if got := svc["Service"]["ExecStart"]; len(got) != 1 || got[0] != "/usr/bin/ov agent serve --user-mode" {
		t.Errorf("ExecStart=%q", got)
	}
	if _, ok := svc["Service"]["LimitMEMLOCK"]; ok {
		t.Error("a user unit must not raise LimitMEMLOCK= (above the hard limit it fails to start)")
	}
	sock := options(t, render(t, units.UserAgentSocket, units.Data{}))
	for k, v := range map[string]string{"ListenStream": "%t/ov/agent.sock", "SocketMode": "0600", "DirectoryMode": "0700", "FileDescriptorName": "agent"} {
		if got := sock["Socket"][k]; len(got) != 1 || got[0] != v {
			t.Errorf("ov-agent-user.socket %s=%q, want %q", k, got, v)
		}
	}
}

// Values that would change a unit's meaning are escaped or refused.
func TestRenderEscapes(t *testing.T) {
	d := data
	d.App, d.Env, d.MachineKey = `my app "x"`, "prod%n$HOME", "/etc/ov/100%.key"
	b := render(t, units.AgentService, d)
	s := options(t, b)["Service"]
	if want := `/usr/bin/ov agent serve --app "my app \"x\"" --env "prod%%n$$HOME" --machine-key-credential ov-machine-key`; s["ExecStart"][0] != want {
		t.Errorf("ExecStart=%s\nwant       %s", s["ExecStart"][0], want)
	}
	if s["LoadCredential"][0] != "ov-machine-key:/etc/ov/100%%.key" {
		t.Errorf("LoadCredential=%s", s["LoadCredential"][0])
	}
	for _, bad := range []units.Data{{App: "a\nExecStartPre=/bin/evil"}, {User: "deploy\n"}, {MachineKey: "/a\x00b"}} {
		if _, err := units.Render(units.AgentService, bad); !errors.Is(err, units.ErrBadValue) {
			t.Errorf("%+v: %v, want ErrBadValue", bad, err)
		}
	}
	d.Server = "https://vault.example.com"
	if s := options(t, render(t, units.AgentService, d))["Service"]; !strings.HasSuffix(s["ExecStart"][0], " --server https://vault.example.com") {
		t.Errorf("ExecStart=%s", s["ExecStart"][0])
	}
}

// tree makes a root directory for `systemd-analyze --root=`: the ov binary
// (any executable), /bin/kill, systemd's own units, and the rendered units.
func tree(t *testing.T, d units.Data) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "bin", "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "/bin/true", filepath.Join(root, "usr/bin/ov"))
	copyFile(t, "/bin/kill", filepath.Join(root, "bin/kill"))
	copyTree(t, "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/system"))
	for _, n := range units.SystemUnits {
		if err := os.WriteFile(filepath.Join(root, "etc/systemd/system", n), render(t, n, d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func analyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("skipping: systemd-analyze not installed (Debian package systemd)")
	}
	if _, err := os.Stat("/usr/lib/systemd/system/sysinit.target"); err != nil {
		t.Skip("skipping: systemd's units are not installed")
	}
	return p
}

// systemd-analyze verify prints nothing for good units (it exits 0 on some
// problems, so any output is a failure). man:ov(1) is not installed on the
// test machine, hence --man=no.
func TestVerify(t *testing.T) {
	sa := analyze(t)
	odd := data
	odd.App, odd.Env, odd.MachineKey, odd.Server = `my app "x"`, "prod%n$HOME", "/etc/ov/100%.key", "https://vault.example.com"
	var root string
	for _, d := range []units.Data{odd, data} {
		root = tree(t, d)
		out, err := exec.Command(sa, "verify", "--man=no", "--root="+root,
			"/etc/systemd/system/ov-agent.service", "/etc/systemd/system/ov-agent.socket",
			"/etc/systemd/system/ov-agent-credentials.socket").CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify (system units for %s/%s): %v\n%s", d.App, d.Env, err, out)
		}
	}

	// User units: --root does not apply to the user manager, so the unit
	// names the tree's binary by its absolute path.
	dir := t.TempDir()
	rt := filepath.Join(dir, "xdg")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, n := range units.UserUnits {
		f := filepath.Join(dir, n)
		if err := os.WriteFile(f, render(t, n, units.Data{Binary: filepath.Join(root, "usr/bin/ov")}), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	cmd := exec.Command(sa, append([]string{"verify", "--user", "--man=no"}, files...)...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify --user: %v\n%s", err, out)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// systemd-analyze security scores both agent services at 2.0 or better.
func TestSecurityExposure(t *testing.T) {
	sa := analyze(t)
	root := tree(t, data)
	score := func(args ...string) float64 {
		t.Helper()
		cmd := exec.Command(sa, append([]string{"security", "--offline=true", "--no-pager"}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		m := exposure.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %v: %v\n%s", args, err, out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	sys := score("--root="+root, "/etc/systemd/system/ov-agent.service")
	t.Logf("systemd-analyze security ov-agent.service: exposure %.1f", sys)
	if sys > 2.0 {
		t.Errorf("ov-agent.service exposure %.1f, want ≤ 2.0", sys)
	}
	f := filepath.Join(t.TempDir(), units.UserAgentService)
	if err := os.WriteFile(f, render(t, units.UserAgentService, units.Data{Binary: filepath.Join(root, "usr/bin/ov")}), 0o644); err != nil {
		t.Fatal(err)
	}
	usr := score("--user", f)
	t.Logf("systemd-analyze security --user ov-agent-user.service: exposure %.1f", usr)
	if usr > 2.0 {
		t.Errorf("ov-agent-user.service exposure %.1f, want ≤ 2.0", usr)
	}
}
