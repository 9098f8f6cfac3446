// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// The tests start the agent as a separate process — this test binary,
// re-executed with OV_AGENT_TEST_HELPER=serve — exactly as systemd would:
// the listening socket as fd 3 with LISTEN_FDS, LISTEN_FDNAMES and
// LISTEN_PID, a real notify socket in NOTIFY_SOCKET, the machine key as a
// 0400 file in a real $CREDENTIALS_DIRECTORY, and (as root) User=65534.
// Clients of other uids are the same binary with OV_AGENT_TEST_HELPER=client.

const (
	helperEnv = "OV_AGENT_TEST_HELPER"
	nobody    = 65534
	otherUID  = 4242
	credName  = "ov-machine-key"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "serve":
		os.Exit(serveHelper())
	case "client":
		os.Exit(clientHelper())
	case "dbus":
		os.Exit(dbusHelper())
	case "flood":
		os.Exit(floodHelper())
	case "hold":
		os.Exit(holdHelper())
	case "credential":
		os.Exit(credentialHelper())
	}
	code := m.Run()
	if sharedBinDir != "" {
		os.RemoveAll(sharedBinDir)
	}
	os.Exit(code)
}

// ---- the test key source ----

// testSecrets are what the test Source returns for every environment it
// opens, plus KEY_FINGERPRINT (derived from the key, read at each Read, so
// a reload shows) and OV_EXTRA more (for the benchmark).
var testSecrets = map[string]string{
	"DATABASE_URL":      "postgres://app:s3cret@db.internal/app",
	"STRIPE_SECRET_KEY": "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
}

// testSource is a key source without a server: it stands in for the
// machine-key and account-key read paths, which live elsewhere. It reads
// the key's locked buffer on every Read, so using a destroyed key would
// fault.
type testSource struct {
	k     *agent.Key
	extra int
	mu    sync.Mutex
	wiped bool
}

func testOpener(extra int) agent.Opener {
	return func(_ context.Context, k *agent.Key) (agent.Source, error) {
		if k.Kind == agent.KeyAccount && len(k.AccountID) != 16 {
			return nil, fmt.Errorf("open account key: account id of %d bytes: %w", len(k.AccountID), localapi.ErrDenied)
		}
		return &testSource{k: k, extra: extra}, nil
	}
}

func (s *testSource) Read(ctx context.Context, app, env string) (*remote.Env, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wiped {
		return nil, errors.New("read after wipe")
	}
	if app == "missing" {
		return nil, fmt.Errorf("find %s/%s: %w", app, env, remote.ErrAppNotFound)
	}
	e := &remote.Env{AppName: app, EnvName: env}
	for n, v := range testSecrets {
		e.Secrets = append(e.Secrets, remote.Secret{Name: n, Version: 1, Value: []byte(v)})
	}
	e.Secrets = append(e.Secrets, remote.Secret{Name: "KEY_FINGERPRINT", Version: 1, Value: []byte(s.k.Fingerprint())})
	for i := range s.extra {
		e.Secrets = append(e.Secrets, remote.Secret{Name: fmt.Sprintf("EXTRA_%03d", i), Version: 1, Value: bytes.Repeat([]byte{'v'}, 64)})
	}
	return e, nil
}

func (s *testSource) Wipe() {
	s.mu.Lock()
	s.wiped = true
	s.mu.Unlock()
}

// ---- helper processes ----

func serveHelper() int {
	if os.Getenv("OV_JOURNAL") == "1" {
		if err := journalStderr(); err != nil {
			fmt.Fprintln(os.Stderr, "connect to the journal:", err)
			return 1
		}
	}
	cfg := agent.Config{
		App:                  os.Getenv("OV_APP"),
		Env:                  os.Getenv("OV_ENV"),
		MachineKeyCredential: os.Getenv("OV_CRED"),
		Open:                 testOpener(0),
		Bus:                  agent.BusNone,
		Log:                  logrus.NewEntry(sd.NewLogger(logrus.DebugLevel)),
		Version:              "test",
		SocketPath:           os.Getenv("OV_SOCKET_PATH"),
		CredentialPolicyDir:  os.Getenv("OV_CRED_POLICIES"),
	}
	if os.Getenv("OV_RATE") == "off" {
		cfg.Rate = agent.Rate{PerMinute: -1}
	}
	if os.Getenv("OV_NO_RUN") == "1" {
		agent.DisableRunForTest() // answer RUN as an agent older than RUN
	}
	cfg.Limits = limitsFromEnv()
	if os.Getenv("OV_BUS") == "system" {
		cfg.Bus = agent.BusSystem
	}
	if err := agent.Serve(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// clientHelper makes one request as its uid and prints the outcome:
// "ok …" or "error code=… …".
func clientHelper() int {
	ep := &localapi.Endpoint{Socket: os.Getenv("OV_SOCKET"), ListenerUIDs: []uint32{0}, System: true}
	c := localapi.NewClient(ep)
	ctx := context.Background()
	var err error
	switch op := os.Getenv("OV_OP"); op {
	case "status":
		var st *localapi.Status
		if st, err = c.Status(ctx); err == nil {
			fmt.Printf("ok state=%s owner=%d\n", st.State, st.OwnerUID)
		}
	case "burst":
		// LIST until rate limited; report how many were answered
		// (served or denied) before.
		served, denied := 0, 0
		for range 40 {
			_, err = c.List(ctx, "myapp", "production")
			if errors.Is(err, localapi.ErrRateLimited) {
				break
			}
			if err == nil {
				served++
			} else {
				denied++
			}
		}
		fmt.Printf("served=%d denied=%d code=%s\n", served, denied, localapi.CodeOf(err))
		return 0
	case "list":
		var names []string
		if names, err = c.List(ctx, "myapp", "production"); err == nil {
			fmt.Printf("ok names=%s\n", strings.Join(names, ","))
		}
	case "get":
		var r *localapi.Response
		names := strings.Split(os.Getenv("OV_NAMES"), ",")
		app := cmp.Or(os.Getenv("OV_REQ_APP"), "myapp")
		if r, err = c.Get(ctx, app, "production", names); err == nil {
			fmt.Printf("ok digest=%s\n", digest(r.Secrets))
			r.Wipe()
		}
	case "run":
		// RUN: OV_NAMES (empty: every secret) of OV_REQ_APP (default myapp)/production.
		var r *localapi.Response
		var names []string
		if n := os.Getenv("OV_NAMES"); n != "" {
			names = strings.Split(n, ",")
		}
		app := cmp.Or(os.Getenv("OV_REQ_APP"), "myapp")
		if r, err = c.Run(ctx, app, "production", names); err == nil {
			if names == nil {
				slices.SortFunc(r.Secrets, func(x, y localapi.Secret) int { return strings.Compare(x.Name, y.Name) })
			}
			fmt.Printf("ok served=%t state=%s scope=%s/%s digest=%s\n", r.Run.Served, r.Status.State, r.Status.App, r.Status.Env, digest(r.Secrets))
			r.Wipe()
		} else if errors.Is(err, localapi.ErrUnknownOp) {
			fmt.Printf("unknown-op %v\n", err)
			return 0
		}
	case "runburst":
		// RUN until rate limited; report how many were answered before.
		served := 0
		for range 40 {
			var r *localapi.Response
			if r, err = c.Run(ctx, "myapp", "production", nil); err != nil {
				break
			}
			r.Wipe()
			served++
		}
		fmt.Printf("served=%d code=%s\n", served, localapi.CodeOf(err))
		return 0
	default:
		fmt.Println("unknown op", op)
		return 2
	}
	if err != nil {
		fmt.Printf("error code=%s %v\n", localapi.CodeOf(err), err)
	}
	return 0
}

// dbusHelper calls a method of the agent over the system bus as its uid.
func dbusHelper() int {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		fmt.Println("connect:", err)
		return 1
	}
	defer conn.Close()
	obj := conn.Object(agent.BusName, agent.BusPath)
	call := obj.Call(agent.BusInterface+"."+os.Getenv("OV_METHOD"), 0)
	var s string
	if call.Err == nil && os.Getenv("OV_METHOD") == "Status" {
		_ = call.Store(&s)
	}
	var de dbus.Error
	if errors.As(call.Err, &de) {
		fmt.Printf("error name=%s\n", de.Name)
		return 0
	}
	if call.Err != nil {
		fmt.Printf("error %v\n", call.Err)
		return 0
	}
	fmt.Printf("ok %s\n", s)
	return 0
}

// digest names the values without printing them.
func digest(ss []localapi.Secret) string {
	h := sha256.New()
	for _, s := range ss {
		fmt.Fprintf(h, "%s=%d:", s.Name, len(s.Value))
		h.Write(s.Value)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func wantDigest(names []string, fp string) string {
	var ss []localapi.Secret
	for _, n := range names {
		v := testSecrets[n]
		if n == "KEY_FINGERPRINT" {
			v = fp
		}
		ss = append(ss, localapi.Secret{Name: n, Value: []byte(v)})
	}
	return digest(ss)
}

// asBus calls a method of the agent over the bus as uid (see dbusHelper).
func (p *agentProc) asBus(t *testing.T, uid uint32, addr, method string) string {
	t.Helper()
	cmd := exec.Command(p.bin, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=dbus", "DBUS_SYSTEM_BUS_ADDRESS=" + addr, "OV_METHOD=" + method}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("D-Bus client as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// fingerprint is what the agent reports for a machine key.
func fingerprint(t *testing.T, key []byte) string {
	t.Helper()
	b, err := secmem.New(len(key))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	copy(b.Bytes(), key)
	k := &agent.Key{Kind: agent.KeyMachine, Bytes: b}
	return k.Fingerprint()
}

// ---- the harness ----

// safeDir is a 0755 root-owned directory under /run that other uids can
// traverse and whose ancestors pass the credential checks.
func safeDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("/run", "ov-agent-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to run the agent and its clients as other uids, as systemd does")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type agentOpts struct {
	uid        uint32 // the agent's User= (0: root)
	key        []byte // machine key credential; nil: start locked
	noCred     bool   // name a credential that is not there
	socketMode os.FileMode
	env        []string
	journal    bool // log to a real systemd-journald (see journalCommand)
	// credentials also passes ov-agent-credentials.socket's listener
	// (root 0600, FileDescriptorName=credentials; see credprov_test.go).
	credentials bool
}

type agentProc struct {
	dir, sock, cred string
	credSock        string // the credentials socket, when agentOpts.credentials
	bin             string
	cmd             *exec.Cmd
	logs            *syncBuffer
	notify          chan string
	seen            []string
	exited          chan error
	journald        string // the pid file of the agent's journald, when journal
}

var (
	sharedBinOnce sync.Once
	sharedBinDir  string
	sharedBin     string
	sharedBinErr  error
)

// testBinary returns a copy of the test binary that every uid can run
// (the original sits in a 0700 build directory), made once per run.
func testBinary(t *testing.T) string {
	t.Helper()
	sharedBinOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			sharedBinErr = err
			return
		}
		b, err := os.ReadFile(self)
		if err != nil {
			sharedBinErr = err
			return
		}
		if sharedBinDir, sharedBinErr = os.MkdirTemp("/run", "ov-agent-bin-"); sharedBinErr != nil {
			return
		}
		if sharedBinErr = os.Chmod(sharedBinDir, 0o755); sharedBinErr != nil {
			return
		}
		sharedBin = filepath.Join(sharedBinDir, "agent.test")
		sharedBinErr = os.WriteFile(sharedBin, b, 0o755)
	})
	if sharedBinErr != nil {
		t.Fatal(sharedBinErr)
	}
	return sharedBin
}

// startAgent starts the agent as systemd would for ov-agent.socket and
// ov-agent.service.
func startAgent(t *testing.T, o agentOpts) *agentProc {
	t.Helper()
	needRoot(t)
	dir := safeDir(t)
	p := &agentProc{dir: dir, logs: &syncBuffer{}, notify: make(chan string, 64), exited: make(chan error, 1)}
	p.bin = testBinary(t)

	// ov-agent.socket: root listens, the socket belongs to User= (0600).
	p.sock = filepath.Join(dir, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	mode := o.socketMode
	if mode == 0 {
		mode = 0o600
	}
	if err := os.Chown(p.sock, int(o.uid), int(o.uid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p.sock, mode); err != nil {
		t.Fatal(err)
	}
	lf, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	defer lf.Close()

	// The notify socket, writable by the agent's uid.
	np := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: np, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if err := os.Chmod(np, 0o777); err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := nc.Read(b)
			if err != nil {
				return
			}
			p.notify <- string(b[:n])
		}
	}()

	env := []string{
		helperEnv + "=serve", "PATH=/usr/bin:/bin",
		"LISTEN_FDS=1", "LISTEN_FDNAMES=agent",
		"NOTIFY_SOCKET=" + np, "INVOCATION_ID=0123456789abcdef",
		"OV_APP=myapp", "OV_ENV=production",
	}
	// $CREDENTIALS_DIRECTORY with the machine key, 0400, owned by User=.
	if o.key != nil || o.noCred {
		p.cred = filepath.Join(dir, "credentials")
		if err := os.Mkdir(p.cred, 0o500); err != nil {
			t.Fatal(err)
		}
		if o.key != nil {
			p.writeKey(t, o.uid, o.key)
		}
		if err := os.Chown(p.cred, int(o.uid), int(o.uid)); err != nil {
			t.Fatal(err)
		}
		env = append(env, "CREDENTIALS_DIRECTORY="+p.cred, "OV_CRED="+credName)
	}
	files := []*os.File{lf}
	if o.credentials {
		cf := p.credentialsSocket(t)
		defer cf.Close()
		files = append(files, cf)
		env = append(env, "LISTEN_FDS=2", "LISTEN_FDNAMES=agent:credentials", "OV_CRED_POLICIES="+filepath.Join(dir, "credentials.d"))
	}
	env = append(env, o.env...)

	// LISTEN_PID (and WATCHDOG_PID) must be the agent's pid: a shell sets
	// them and execs, keeping its pid, as systemd does after fork.
	p.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; WATCHDOG_PID=$$; export LISTEN_PID WATCHDOG_PID; exec "$0" "$@"`, p.bin, "-test.run=^$")
	if o.journal {
		p.cmd = p.journalCommand(t, o.uid)
	}
	p.cmd.Env = env
	p.cmd.Dir = dir
	p.cmd.ExtraFiles = files
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if o.uid != 0 && !o.journal {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: o.uid, Gid: o.uid, Groups: []uint32{}}}
	}
	if err := p.cmd.Start(); err != nil {
		t.Skipf("skipping: cannot start the agent as uid %d: %v", o.uid, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.logs.String(), "WARNING: DATA RACE") {
			t.Error("the race detector fired in the agent")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", p.logs.String())
		}
	})
	return p
}

// writeKey puts the machine key credential in place, atomically.
func (p *agentProc) writeKey(t *testing.T, uid uint32, key []byte) {
	t.Helper()
	tmp := filepath.Join(p.cred, ".tmp")
	if err := os.WriteFile(tmp, key, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.cred, credName)); err != nil {
		t.Fatal(err)
	}
}

// waitNotify returns the first notify message (after those already seen)
// that starts with prefix.
func (p *agentProc) waitNotify(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.notify:
			p.seen = append(p.seen, m)
			if strings.HasPrefix(m, prefix) {
				return m
			}
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("agent exited (%v) before sending %q; sent %q\n%s", err, prefix, p.seen, p.logs.String())
		case <-timeout:
			t.Fatalf("no %q from the agent; sent %q\n%s", prefix, p.seen, p.logs.String())
		}
	}
}

// waitLog waits until the agent's log matches re (the log arrives through
// a pipe, after the agent has answered).
func (p *agentProc) waitLog(t *testing.T, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(5 * time.Second)
	for !rx.MatchString(p.logs.String()) {
		if time.Now().After(deadline) {
			t.Errorf("the agent's log does not match %q:\n%s", re, p.logs.String())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *agentProc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

func (p *agentProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("agent did not exit\n%s", p.logs.String())
	}
	return nil
}

// client is root's client, checking the listener like `ov` does for the
// system agent (the test, as root, plays systemd).
func (p *agentProc) client() *localapi.Client {
	return localapi.NewClient(&localapi.Endpoint{Socket: p.sock, ListenerUIDs: []uint32{0}, System: true})
}

// as runs one client request as uid (see clientHelper).
func (p *agentProc) as(t *testing.T, uid uint32, op string, env ...string) string {
	t.Helper()
	cmd := exec.Command(p.bin, "-test.run=^$")
	cmd.Env = append([]string{helperEnv + "=client", "OV_SOCKET=" + p.sock, "OV_OP=" + op}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out)) + " pid=" + strconv.Itoa(cmd.Process.Pid)
}
