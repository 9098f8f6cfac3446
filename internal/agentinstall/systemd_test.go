// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agentinstall_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	policyfiles "github.com/opaquevault/opaquevault/polkit"
)

// TestUnderSystemd drives the library under a real systemd: a Debian root
// filesystem (the tarball `make e2e` caches) booted with systemd-nspawn,
// /usr/bin/ov replaced by testdata/ovsd (these packages without the CLI),
// then `ov agent install --enable` over D-Bus to PID 1, socket activation on
// the first connection through the root-owned rendezvous, LoadCredential=,
// READY=1/STATUS=, the journal's OV_ fields, the D-Bus object, reload, stop
// and uninstall. It takes about 15 s, so it runs only with
// OV_TEST_SYSTEMD=1 (OV_TEST_ROOTFS names the tarball; default: the newest
// /var/cache/opaquevault-e2e/bookworm-*.tar.zst).
func TestUnderSystemd(t *testing.T) {
	if os.Getenv("OV_TEST_SYSTEMD") != "1" {
		t.Skip("skipping: set OV_TEST_SYSTEMD=1 to boot a container (needs root, systemd-nspawn and the `make e2e` root filesystem; `make test-systemd` does, after `make e2e`)")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter", "tar", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed", tool)
		}
	}
	tarball := os.Getenv("OV_TEST_ROOTFS")
	if tarball == "" {
		m, _ := filepath.Glob("/var/cache/opaquevault-e2e/bookworm-*.tar.zst")
		if len(m) == 0 {
			t.Fatal("OV_TEST_SYSTEMD=1 but no root filesystem tarball (run `make e2e` once, or set OV_TEST_ROOTFS)")
		}
		tarball = m[len(m)-1]
	}

	work, err := os.MkdirTemp("/var/tmp", "ov-agent-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	root := filepath.Join(work, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("tar", "--zstd", "-xpf", tarball, "-C", root, "--numeric-owner")
	// The tarball's top directory is debootstrap's 0700 work directory;
	// "/" must be searchable by every user of the container.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	build := exec.Command(gobin, "build", "-o", filepath.Join(root, "usr/bin/ov"), "./testdata/ovsd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ovsd: %v\n%s", err, out)
	}
	run("chroot", root, "useradd", "-m", "-u", "1001", "-U", "deploy")
	// Steps 1 and 2 of the guide: /etc/ov the user's, the key 0600 theirs.
	ov := filepath.Join(root, "etc/ov")
	_ = os.Mkdir(ov, 0o700)
	write(t, filepath.Join(ov, "myapp.key"), string(keyBytes), 0o600, deployUID)
	if err := os.Chown(ov, deployUID, deployUID); err != nil {
		t.Fatal(err)
	}

	// Boot.
	logf, err := os.Create(filepath.Join(work, "nspawn.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	nspawn := exec.Command("systemd-nspawn", "-D", root, "--register=no", "--keep-unit", "--boot", "--console=passive",
		"--private-network", "--machine=ov-agent-test", "--capability=CAP_IPC_LOCK", "--system-call-filter=@memlock")
	nspawn.Stdout, nspawn.Stderr = logf, logf
	if err := nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- nspawn.Wait() }()
	var pid1 string
	ct := func(args ...string) (string, error) {
		cmd := exec.Command("nsenter", append([]string{"-t", pid1, "-a", "--", "env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER="}, args...)...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	t.Cleanup(func() {
		if pid1 != "" {
			_, _ = ct("systemctl", "poweroff")
		}
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			// Killing nspawn alone would leave the container's init
			// running: kill the container's PID 1 (its whole namespace).
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(nspawn.Process.Pid) + "/task/" + strconv.Itoa(nspawn.Process.Pid) + "/children")
			for _, c := range strings.Fields(string(b)) {
				if p, err := strconv.Atoi(c); err == nil {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = nspawn.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("container console:\n%s", b)
		}
	})
	// The container's PID 1 is the child of systemd-nspawn that runs
	// systemd (nspawn's first children are short-lived helpers).
	deadline := time.Now().Add(60 * time.Second)
	for pid1 == "" && time.Now().Before(deadline) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(nspawn.Process.Pid) + "/task/" + strconv.Itoa(nspawn.Process.Pid) + "/children")
		for _, c := range strings.Fields(string(b)) {
			if comm, _ := os.ReadFile("/proc/" + c + "/comm"); strings.TrimSpace(string(comm)) == "systemd" {
				pid1 = c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pid1 == "" {
		t.Fatal("no container PID 1")
	}
	for {
		s, _ := ct("systemctl", "is-system-running")
		if s == "running" || s == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container not up: %q", s)
		}
		time.Sleep(100 * time.Millisecond)
	}

	must := func(what string, args ...string) string {
		t.Helper()
		out, err := ct(args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return out
	}
	expect := func(what, out string, re string) {
		t.Helper()
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("%s: %q does not match %q", what, out, re)
		}
	}

	out := must("ov agent install --enable", "/usr/bin/ov", "agent", "install", "--machine-key", "/etc/ov/myapp.key",
		"--app", "myapp", "--env", "production", "--user", "deploy", "--enable")
	expect("install", out, `enabled=true`)
	expect("enabled", must("is-enabled", "systemctl", "is-enabled", "ov-agent.socket"), `^enabled$`)
	expect("socket active", must("is-active", "systemctl", "is-active", "ov-agent.socket"), `^active$`)
	// --enable is `systemctl enable --now ov-agent`: the service is enabled
	// and running (it checked the key), with its socket.
	expect("service enabled", must("is-enabled", "systemctl", "is-enabled", "ov-agent.service"), `^enabled$`)
	expect("service started", must("is-active", "systemctl", "is-active", "ov-agent.service"), `^active$`)
	// Stopped, it is started again by the socket on the next connection.
	must("stop the agent", "systemctl", "stop", "ov-agent.service")
	s, _ := ct("systemctl", "is-active", "ov-agent.service")
	expect("service stopped", s, `^inactive$`)
	expect("final state", must("stat", "stat", "-c", "%n %U:%G %a", "/etc/ov", "/etc/ov/agent.socket", "/etc/ov/myapp.key", "/run/ov", "/run/ov/agent.sock"),
		`(?s)^/etc/ov root:root 755\n/etc/ov/agent.socket root:root 644\n/etc/ov/myapp.key deploy:deploy 600\n/run/ov root:root 755\n/run/ov/agent.sock deploy:\w+ 600$`)

	// First connection: the user, through the rendezvous, activates the agent.
	out = must("deploy: ov agent get", "runuser", "-u", "deploy", "--", "/usr/bin/ov", "agent", "get", "--app", "myapp", "--env", "production", "DATABASE_URL", "KEY_FINGERPRINT")
	expect("get", out, `^got=DATABASE_URL,KEY_FINGERPRINT digest=[0-9a-f]{16}$`)
	state := must("show", "systemctl", "show", "-p", "ActiveState,StatusText,User", "ov-agent.service")
	for _, want := range []string{`(?m)^ActiveState=active$`, `(?m)^StatusText=unlocked: myapp/production$`, `(?m)^User=deploy$`} {
		expect("unit state", state, want)
	}
	expect("root status", must("root: ov agent status", "/usr/bin/ov", "agent", "status"), `^state=unlocked text="unlocked: myapp/production" key=machine owner=1001 system=true$`)
	if out, err := ct("runuser", "-u", "nobody", "--", "/usr/bin/ov", "agent", "status"); err == nil {
		t.Errorf("nobody reached the agent: %s", out)
	}

	// The journal: native entries with OV_ fields, queryable.
	time.Sleep(200 * time.Millisecond)
	j := must("journal", "journalctl", "--no-pager", "-o", "verbose", "_SYSTEMD_UNIT=ov-agent.service", "OV_PEER_UID=1001")
	for _, want := range []string{"MESSAGE=served secrets", "OV_APP=myapp", "OV_ENV=production", "OV_REQUEST=GET", "OV_SECRETS=DATABASE_URL,KEY_FINGERPRINT"} {
		if !strings.Contains(j, want) {
			t.Errorf("journal lacks %s:\n%s", want, j)
		}
	}
	if j := must("journal", "journalctl", "--no-pager", "-u", "ov-agent.service"); !strings.Contains(j, "agent ready") || strings.Contains(j, "postgres://") {
		t.Errorf("journal -u ov-agent:\n%s", j)
	}

	// D-Bus: the name, introspection, Status. Lock: another user is denied
	// (polkitd does not answer the agent about other users' subjects, so
	// the agent says no); the agent's own user and root may lock.
	expect("introspect", must("busctl introspect", "busctl", "introspect", "--no-pager", "com.opaquevault.Agent1", "/com/opaquevault/Agent1"), `\.Status\s+method\s+-\s+s`)
	expect("Status", must("busctl call Status", "busctl", "call", "com.opaquevault.Agent1", "/com/opaquevault/Agent1", "com.opaquevault.Agent1", "Status"), `^s "unlocked: myapp/production"$`)
	pol := filepath.Join(root, "usr/share/polkit-1/actions", policyfiles.PolicyFile)
	if err := os.WriteFile(pol, policyfiles.Policy(), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // polkitd rereads its actions on change
	lock := func(who string) (string, error) {
		return ct("runuser", "-u", who, "--", "busctl", "call", "com.opaquevault.Agent1", "/com/opaquevault/Agent1", "com.opaquevault.Agent1", "Lock")
	}
	if out, err := lock("nobody"); err == nil || !strings.Contains(out, "Access denied") {
		t.Errorf("nobody: Lock over D-Bus: %v %s; want denied", err, out)
	}
	j = must("journal", "journalctl", "--no-pager", "-o", "verbose", "-u", "ov-agent.service", "OV_REQUEST=com.opaquevault.agent.lock")
	if !strings.Contains(j, "MESSAGE=D-Bus call denied") || !strings.Contains(j, "OV_PEER_UID=65534") {
		t.Errorf("journal lacks the denial of uid 65534:\n%s", j)
	}
	expect("agent still unlocked", must("root: ov agent status", "/usr/bin/ov", "agent", "status"), `^state=unlocked`)
	for _, who := range []string{"deploy", "root"} {
		if out, err := lock(who); err != nil {
			t.Errorf("%s: Lock over D-Bus: %v %s", who, err, out)
		}
		expect(who+" locked over D-Bus", must("root: ov agent status", "/usr/bin/ov", "agent", "status"), `^state=locked`)
		must("reload to unlock", "systemctl", "reload", "ov-agent.service")
		expect("reloaded", must("root: ov agent status", "/usr/bin/ov", "agent", "status"), `^state=unlocked`)
	}

	// Reload (SIGHUP, RELOADING=1 … READY=1), then stop: the socket stays.
	must("reload", "systemctl", "reload", "ov-agent.service")
	expect("after reload", must("show", "systemctl", "show", "-p", "ActiveState", "ov-agent.service"), `ActiveState=active`)
	must("stop", "systemctl", "stop", "ov-agent.service")
	if j := must("journal", "journalctl", "--no-pager", "-u", "ov-agent.service"); !strings.Contains(j, "reloading") || !strings.Contains(j, "agent stopped") {
		t.Errorf("journal after reload and stop:\n%s", j)
	}
	expect("socket after stop", must("is-active", "systemctl", "is-active", "ov-agent.socket"), `^active$`)

	sec, _ := ct("systemd-analyze", "security", "--no-pager", "ov-agent.service")
	if m := regexp.MustCompile(`Overall exposure level for ov-agent.service: ([0-9.]+)`).FindStringSubmatch(sec); m != nil {
		t.Logf("systemd-analyze security ov-agent.service (under systemd 252): %s", m[1])
	} else {
		t.Errorf("systemd-analyze security: %s", sec)
	}

	out = must("uninstall", "/usr/bin/ov", "agent", "uninstall")
	expect("uninstall", out, `removed=6 `) // units (agent, its socket, the credentials socket), bus policy, polkit restart rule, rendezvous
	s, _ = ct("systemctl", "is-enabled", "ov-agent.socket")
	if !strings.Contains(s, "No such file") && !strings.Contains(s, "not-found") && s != "disabled" {
		t.Errorf("after uninstall: is-enabled %q", s)
	}
	if s, _ := ct("systemctl", "is-active", "ov-agent.socket"); s == "active" {
		t.Error("socket still active after uninstall")
	}
}
