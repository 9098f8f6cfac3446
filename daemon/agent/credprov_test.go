// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/sdunit"
)

// systemdAddr is the abstract address systemd binds before it connects to
// a LoadCredential= socket: "\0RANDOM/unit/UNIT/NAME" ("@" in Go).
func systemdAddr(unit, name string) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "@" + hex.EncodeToString(r[:]) + "/unit/" + unit + "/" + name
}

// askCredential connects to sock as systemd does (bound to laddr, writing
// nothing) and reads until EOF.
func askCredential(sock, laddr string) ([]byte, error) {
	var la *net.UnixAddr
	if laddr != "" {
		la = &net.UnixAddr{Name: laddr, Net: "unix"}
	}
	c, err := net.DialUnix("unix", la, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return io.ReadAll(c)
}

// credentialHelper is askCredential in a process of another uid: it prints
// how many bytes it received.
func credentialHelper() int {
	b, err := askCredential(os.Getenv("OV_SOCKET"), os.Getenv("OV_LADDR"))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Printf("bytes=%d\n", len(b))
	return 0
}

type credAgent struct {
	sock, policies string
	logs           *syncBuffer
}

// serveCredentials runs Serve in this process with a credentials socket
// (root 0600, as ov-agent-credentials.socket makes it) and a policy
// directory, unlocked with an account key.
func serveCredentials(t *testing.T, app, env string) *credAgent {
	t.Helper()
	needRoot(t)
	dir := safeDir(t)
	al, err := agent.Listen(filepath.Join(dir, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ca := &credAgent{sock: filepath.Join(dir, "credentials.sock"), policies: filepath.Join(dir, "credentials.d"), logs: &syncBuffer{}}
	cl, err := agent.Listen(ca.sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ca.policies, 0o755); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(ca.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Serve(ctx, agent.Config{
			Listeners: []net.Listener{al}, CredentialListeners: []net.Listener{cl}, CredentialPolicyDir: ca.policies,
			App: app, Env: env, Open: testOpener(0), Bus: agent.BusNone, Log: logrus.NewEntry(log), Mode: agent.ModeSystem,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := localapi.NewClient(&localapi.Endpoint{Socket: filepath.Join(dir, "agent.sock"), ListenerUIDs: []uint32{0}, System: true})
	u := &localapi.Unlock{AccountID: bytes.Repeat([]byte{1}, 16), AccountKey: bytes.Repeat([]byte{7}, 32)}
	var uerr error
	for range 100 {
		if uerr = c.Unlock(context.Background(), u); !errors.Is(uerr, localapi.ErrUnreachable) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if uerr != nil {
		t.Fatal(uerr)
	}
	return ca
}

func (ca *credAgent) policy(t *testing.T, unit, text string) string {
	t.Helper()
	p := filepath.Join(ca.policies, unit+".conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// refused asks as root from laddr and expects a log line with want,
// without a value. A request in systemd's form (systemd is true) must get
// more zero bytes than systemd takes as a credential, so that the unit
// fails to start; any other, nothing.
func (ca *credAgent) refused(t *testing.T, laddr, want string) {
	t.Helper()
	b, err := askCredential(ca.sock, laddr)
	if err != nil {
		t.Fatalf("connect from %q: %v", laddr, err)
	}
	_, _, systemd := agent.CredentialPeerForTest(laddr)
	switch {
	case systemd && (len(b) != agent.RefusalSize || len(bytes.Trim(b, "\x00")) != 0):
		t.Fatalf("from %q: got %d bytes (%d not zero), want %d zero bytes", laddr, len(b), len(bytes.Trim(b, "\x00")), agent.RefusalSize)
	case !systemd && len(b) != 0:
		t.Fatalf("from %q: got %d bytes, want none", laddr, len(b))
	}
	ca.waitLog(t, want)
}

func (ca *credAgent) waitLog(t *testing.T, want string) {
	t.Helper()
	for range 200 {
		if strings.Contains(ca.logs.String(), want) {
			ca.noValues(t)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line with %q:\n%s", want, ca.logs.String())
}

func (ca *credAgent) noValues(t *testing.T) {
	t.Helper()
	for n, v := range testSecrets {
		if strings.Contains(ca.logs.String(), v) {
			t.Fatalf("the log holds the value of %s", n)
		}
	}
}

func TestCredentialProvider(t *testing.T) {
	ca := serveCredentials(t, "myapp", "production")
	ca.policy(t, "myapp.service", "# test\napp=myapp\nenv=production\nsecrets=DATABASE_URL, KEY_FINGERPRINT\n")

	t.Run("served", func(t *testing.T) {
		b, err := askCredential(ca.sock, systemdAddr("myapp.service", "DATABASE_URL"))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != testSecrets["DATABASE_URL"] {
			t.Fatalf("got %d bytes, want the value of DATABASE_URL (%d bytes)\n%s", len(b), len(testSecrets["DATABASE_URL"]), ca.logs.String())
		}
		ca.waitLog(t, `"credential":"DATABASE_URL","env":"production","level":"info","listener":"credentials","msg":"served credential"`)
		if !strings.Contains(ca.logs.String(), `"unit":"myapp.service"`) {
			t.Errorf("the log does not name the unit:\n%s", ca.logs.String())
		}
	})
	t.Run("not in the policy", func(t *testing.T) {
		ca.refused(t, systemdAddr("myapp.service", "STRIPE_SECRET_KEY"), `"credential":"STRIPE_SECRET_KEY"`)
		ca.waitLog(t, "credential refused: not in the unit's policy")
	})
	t.Run("unit without a policy", func(t *testing.T) {
		ca.refused(t, systemdAddr("other.service", "DATABASE_URL"), "no such file: the unit has no policy")
	})
	t.Run("not systemd's address", func(t *testing.T) {
		ca.refused(t, "", `"peer_addr":"\"@\""`)
		ca.refused(t, "@forged/DATABASE_URL", "the caller's address is not systemd's")
		ca.refused(t, "@zz/unit/myapp.service/DATABASE_URL", `"peer_addr":"\"@zz/unit/myapp.service/DATABASE_URL\""`)
		ca.refused(t, systemdAddr("../myapp.service", "DATABASE_URL"), `"peer_addr":"\"@`)
	})
	t.Run("unsafe policy files", func(t *testing.T) {
		p := ca.policy(t, "gw.service", "app=myapp\nenv=production\nsecrets=DATABASE_URL\n")
		if err := os.Chmod(p, 0o664); err != nil {
			t.Fatal(err)
		}
		ca.refused(t, systemdAddr("gw.service", "DATABASE_URL"), "writable by group or others (mode 0664)")

		p = ca.policy(t, "owned.service", "app=myapp\nenv=production\nsecrets=DATABASE_URL\n")
		if err := os.Chown(p, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		ca.refused(t, systemdAddr("owned.service", "DATABASE_URL"), "owned by uid 4242, want root")

		if err := os.Symlink(filepath.Join(ca.policies, "myapp.service.conf"), filepath.Join(ca.policies, "link.service.conf")); err != nil {
			t.Fatal(err)
		}
		ca.refused(t, systemdAddr("link.service", "DATABASE_URL"), "a symbolic link (refused)")

		ca.policy(t, "bad.service", "app=myapp\nenv=production\nsecrets=DATABASE_URL\nuser=root\n")
		ca.refused(t, systemdAddr("bad.service", "DATABASE_URL"), `unknown key \"user\"`)
	})
	t.Run("another scope", func(t *testing.T) {
		ca.policy(t, "scope.service", "app=otherapp\nenv=production\nsecrets=DATABASE_URL\n")
		ca.refused(t, systemdAddr("scope.service", "DATABASE_URL"), "the policy names otherapp/production; this agent serves myapp/production only")
	})
}

// A group-writable policy directory makes every policy in it unusable.
func TestCredentialProviderUnsafeDir(t *testing.T) {
	ca := serveCredentials(t, "myapp", "production")
	ca.policy(t, "myapp.service", "app=myapp\nenv=production\nsecrets=DATABASE_URL\n")
	if err := os.Chmod(ca.policies, 0o775); err != nil {
		t.Fatal(err)
	}
	ca.refused(t, systemdAddr("myapp.service", "DATABASE_URL"), "directory credentials.d: writable by group or others (mode 0775)")
}

// The attack: a process that is not root forges systemd's address for a
// unit whose policy allows the secret. The socket is made world-connectable
// here, so that the agent's peer check, not the file mode, is what refuses.
func TestCredentialProviderRefusesNonRoot(t *testing.T) {
	ca := serveCredentials(t, "myapp", "production")
	ca.policy(t, "myapp.service", "app=myapp\nenv=production\nsecrets=DATABASE_URL\n")
	if err := os.Chmod(ca.sock, 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testBinary(t), "-test.run=^$")
	cmd.Env = []string{helperEnv + "=credential", "OV_SOCKET=" + ca.sock, "OV_LADDR=" + systemdAddr("myapp.service", "DATABASE_URL")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", nobody, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "bytes=0" {
		t.Fatalf("a process of uid %d got %s, want bytes=0", nobody, got)
	}
	ca.waitLog(t, `"credential":"DATABASE_URL","env":"production","level":"warning","listener":"credentials","msg":"credential refused: the caller is not the service manager (uid 0)"`)
	ca.waitLog(t, fmt.Sprintf(`"peer_uid":%d`, nobody))
	ca.waitLog(t, `"unit":"myapp.service"`)
}

func TestParseCredentialPolicy(t *testing.T) {
	// What `ov systemd cutover --credentials` writes is what the agent reads.
	plan := &sdunit.Plan{Unit: "myapp.service", App: "myapp", Env: "production", Credentials: true,
		Vars: []sdunit.Var{{Name: "B", Status: sdunit.Same}, {Name: "A", Status: sdunit.Same}, {Name: "PORT", Status: sdunit.Kept}}}
	p, err := agent.ParseCredentialPolicy([]byte(plan.Policy()))
	if err != nil {
		t.Fatal(err)
	}
	if p.App != "myapp" || p.Env != "production" || strings.Join(p.Secrets, ",") != "A,B" || !p.Allows("A") || p.Allows("PORT") {
		t.Errorf("parsed %+v", p)
	}
	for _, bad := range []string{
		"", "app=a\nenv=b\n", "app=a\nenv=b\nsecrets=X\napp=c\n", "app=a\nenv=b\nsecrets=X\nfoo\n",
		"app=a\nenv=b\nsecrets=X,,Y\n", "app=a\nenv=b\nsecrets=X/Y\n", "app=\nenv=b\nsecrets=X\n",
	} {
		if _, err := agent.ParseCredentialPolicy([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// credentialsSocket binds the credentials socket as ov-agent-credentials.socket
// does (root 0600) and makes the policy directory; it returns the listener's
// file for LISTEN_FDS.
func (p *agentProc) credentialsSocket(t *testing.T) *os.File {
	t.Helper()
	p.credSock = filepath.Join(p.dir, "credentials.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.credSock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(p.credSock, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.Mkdir(filepath.Join(p.dir, "credentials.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// The system agent as systemd runs it: socket-activated with both sockets
// by name (LISTEN_FDNAMES=agent:credentials), as an unprivileged User= with
// a machine key credential, reading root-owned policies.
func TestCredentialProviderActivation(t *testing.T) {
	p := startAgent(t, agentOpts{uid: nobody, key: bytes.Repeat([]byte{9}, 32), credentials: true})
	p.waitNotify(t, "READY=1")
	pol := filepath.Join(p.dir, "credentials.d", "myapp.service.conf")
	if err := os.WriteFile(pol, []byte("app=myapp\nenv=production\nsecrets=STRIPE_SECRET_KEY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := askCredential(p.credSock, systemdAddr("myapp.service", "STRIPE_SECRET_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != testSecrets["STRIPE_SECRET_KEY"] {
		t.Fatalf("got %d bytes, want the value of STRIPE_SECRET_KEY", len(b))
	}
	p.waitLog(t, "served credential")
	b, err = askCredential(p.credSock, systemdAddr("myapp.service", "DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != agent.RefusalSize {
		t.Fatalf("DATABASE_URL (not in the policy): got %d bytes, want %d", len(b), agent.RefusalSize)
	}
	p.waitLog(t, "credential refused: not in the unit's policy")
	if strings.Contains(p.logs.String(), testSecrets["STRIPE_SECRET_KEY"]) {
		t.Error("the agent's log holds a value")
	}
	// The agent's own socket still serves its uid's requests.
	if out := p.as(t, nobody, "status"); !strings.HasPrefix(out, "ok state=unlocked") {
		t.Errorf("status on the agent socket: %s", out)
	}
}
