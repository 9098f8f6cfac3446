// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

// TestMain lets the test binary stand in for ov-server: with OV_SERVER_TEST_MAIN=1 it runs Main
// with the arguments in OV_SERVER_TEST_ARGS (separated by \x1f), as systemd would start the real
// binary. LISTEN_PID is set here because only the child knows its pid.
func TestMain(m *testing.M) {
	if os.Getenv("OV_SERVER_TEST_MAIN") == "1" {
		if os.Getenv("LISTEN_FDS") != "" {
			os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, strings.Split(os.Getenv("OV_SERVER_TEST_ARGS"), "\x1f"), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
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

// running is Main running in this process.
type running struct {
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
	shown  string // the address after "listening on "
}

func startMain(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	go func() { r.done <- Main(ctx, args, io.Discard, r.stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, rest, ok := strings.Cut(r.stderr.String(), "ov-server: listening on "); ok {
			r.shown, _, _ = strings.Cut(rest, " (db ")
			t.Cleanup(func() { r.stop(t) })
			return r
		}
		select {
		case code := <-r.done:
			t.Fatalf("Main exited with %d before listening:\n%s", code, r.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("Main did not listen in time:\n%s", r.stderr.String())
	return nil
}

// metricsURL is the address of the metrics listener as Main printed it.
func (r *running) metricsURL(t *testing.T) string {
	t.Helper()
	_, rest, ok := strings.Cut(r.stderr.String(), "ov-server: metrics on ")
	if !ok {
		t.Fatalf("no metrics line:\n%s", r.stderr.String())
	}
	u, _, _ := strings.Cut(rest, "\n")
	return u
}

// stop cancels Main's context and returns its exit code (once; later calls return -1).
func (r *running) stop(t *testing.T) int {
	r.cancel()
	select {
	case code, ok := <-r.done:
		if !ok {
			return -1
		}
		close(r.done)
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("Main did not return after cancel")
	}
	return -1
}

func TestMainVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(bg, []string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "ov-server ") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
	for _, args := range [][]string{{"--nope"}, {"extra"}, {"--log-level", "loud"}, {"--tls-cert", "x"}, {"--max-secrets", "0"}} {
		errb.Reset()
		if code := Main(bg, args, io.Discard, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	errb.Reset()
	if code := Main(bg, []string{"--help"}, io.Discard, &errb); code != 0 || !strings.Contains(errb.String(), "--listen") {
		t.Errorf("--help: %d %s", code, errb.String())
	}
}

func TestMainRefusesPlainMetricsOffLoopback(t *testing.T) {
	var stderr bytes.Buffer
	code := Main(bg, []string{"--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "ov.db"), "--metrics-listen", "0.0.0.0:0"}, io.Discard, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "refuse to serve plain HTTP") {
		t.Fatalf("plain metrics on 0.0.0.0: exit %d\n%s", code, stderr.String())
	}
}

func TestMainRefusesPlainHTTPOffLoopback(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ov.db")
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8443", "example.com:8443"} {
		var errb bytes.Buffer
		code := Main(bg, []string{"--listen", addr, "--db", db}, io.Discard, &errb)
		if code != 2 || !strings.Contains(errb.String(), "refuse to serve plain HTTP") || !strings.Contains(errb.String(), "--insecure") {
			t.Errorf("--listen %s: exit %d: %s", addr, code, errb.String())
		}
	}
	// The same rule holds for sockets that come from systemd, judged by the bound address.
	if _, err := describe(fakeListener{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8443}}, false, false); err == nil {
		t.Error("plain HTTP allowed on a non-loopback socket from systemd")
	}
	if l, err := describe(fakeListener{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8443}}, false, true); err != nil || l.shown != "http://10.1.2.3:8443" {
		t.Errorf("--insecure: %v %q", err, l.shown)
	}
	if l, err := describe(fakeListener{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8443}}, true, false); err != nil || !l.tls {
		t.Errorf("TLS: %v %+v", err, l)
	}
}

type fakeListener struct{ addr net.Addr }

func (fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr          { return f.addr }

func TestMainServesAndShutsDownGracefully(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state", "ov-server.db")
	r := startMain(t, "--listen", "127.0.0.1:0", "--db", db, "--metrics-listen", "127.0.0.1:0")
	if !strings.HasPrefix(r.shown, "http://127.0.0.1:") {
		t.Fatalf("listening line: %q", r.shown)
	}
	metricsURL := r.metricsURL(t)
	// The API listener has no /metrics; the metrics listener has nothing else.
	if resp, err := http.Get(r.shown + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("/metrics on the API listener: %v %v", resp, err)
	}
	if resp, err := http.Get(strings.TrimSuffix(metricsURL, "/metrics") + "/v1/apps"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("the API on the metrics listener: %v %v", resp, err)
	}
	h := &harness{t: t}
	c := func(token string) *api.Client {
		cl, err := api.NewClient(r.shown, api.ClientOptions{Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	if err := c("").Health(bg); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(r.shown + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v", err)
	}
	resp.Body.Close()
	u, req := h.registerRequest("vic@example.com")
	if _, err := c("").Register(bg, req); err != nil {
		t.Fatal(err)
	}
	u.c = c(u.token)
	e := u.newEnv(u.newApp("web"), "web", "prod")
	body, _ := json.Marshal(u.draft(e).putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(64)}).build())

	// Start a commit and stall in the middle of its body.
	pr, pw := io.Pipe()
	hreq, _ := http.NewRequest("PUT", r.shown+"/v1/envs/"+hex.EncodeToString(e.envID)+"/manifest", pr)
	hreq.ContentLength = int64(len(body))
	hreq.Header.Set("Authorization", "Bearer "+u.token)
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			res <- result{0, err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, nil}
	}()
	pw.Write(body[:len(body)/2])
	waitFor(t, "the commit to be in flight", func() bool {
		resp, err := http.Get(metricsURL)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), "ov_server_in_flight_requests 1")
	})

	// SIGTERM's equivalent: cancel Main's context. The listener closes, the commit finishes.
	r.cancel()
	addr := strings.TrimPrefix(r.shown, "http://")
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	select {
	case code := <-r.done:
		t.Fatalf("Main returned %d with a request in flight", code)
	default:
	}
	pw.Write(body[len(body)/2:])
	pw.Close()
	got := <-res
	if got.err != nil || got.status != 200 {
		t.Fatalf("in-flight commit: %d %v", got.status, got.err)
	}
	select {
	case code := <-r.done:
		close(r.done)
		if code != 0 {
			t.Fatalf("exit code %d after shutdown", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Main did not return after the in-flight request finished")
	}
	if !strings.Contains(r.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", r.stderr.String())
	}
	// The state survived: a new server on the same file sees the commit.
	r2 := startMain(t, "--listen", "127.0.0.1:0", "--db", db)
	cl, _ := api.NewClient(r2.shown, api.ClientOptions{Token: u.token})
	st, err := cl.Env(bg, hex.EncodeToString(e.envID))
	if err != nil || st.Seq != 1 {
		t.Fatalf("after restart: %v", err)
	}
	if strings.Contains(r.stderr.String()+r2.stderr.String(), u.token) || strings.Contains(r.stderr.String(), strings.TrimPrefix(u.token, "ovd_")) {
		t.Fatal("a token reached the log")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMainUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ov.sock")
	// A stale socket file from a crashed server is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	r := startMain(t, "--listen", "unix:"+sock, "--db", filepath.Join(dir, "ov.db"))
	if r.shown != "unix:"+sock {
		t.Fatalf("listening line: %q", r.shown)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	c, err := api.NewClient("unix://"+sock, api.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(bg); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t}
	u, req := h.registerRequest("wendy@example.com")
	if _, err := c.Register(bg, req); err != nil {
		t.Fatalf("register over the unix socket: %v", err)
	}
	c2, _ := api.NewClient("unix://"+sock, api.ClientOptions{Token: u.token})
	if _, err := c2.Apps(bg); err != nil {
		t.Fatal(err)
	}
	// A second server on the same live socket is refused.
	var errb bytes.Buffer
	if code := Main(bg, []string{"--listen", "unix:" + sock, "--db", filepath.Join(dir, "ov2.db")}, io.Discard, &errb); code != 1 ||
		!strings.Contains(errb.String(), "another server answers") {
		t.Fatalf("second server: %d %s", code, errb.String())
	}
	if code := r.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestMainSystemdActivation passes a real listening socket to a re-exec of the test binary with
// LISTEN_FDS, as systemd does, and checks READY=1 and STOPPING=1 on a real notify socket.
func TestMainSystemdActivation(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	cmd.Env = append(os.Environ(),
		"OV_SERVER_TEST_MAIN=1",
		"OV_SERVER_TEST_ARGS="+strings.Join([]string{"--db", filepath.Join(dir, "ov.db"), "--listen", "127.0.0.1:0"}, "\x1f"),
		"LISTEN_FDS=1", "LISTEN_FDNAMES=ov-server", "NOTIFY_SOCKET="+notifyPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := "ov-server: listening on http://" + ln.Addr().String() + " "
	var log []string
waitLine:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited before listening:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			if strings.HasPrefix(l, want) {
				break waitLine
			}
			if strings.HasPrefix(l, "ov-server: listening on") {
				t.Fatalf("child listened elsewhere than the passed socket: %q", l)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no listening line:\n%s", strings.Join(log, "\n"))
		}
	}
	if got := readNotify(t, notify); !strings.Contains(got, "READY=1") {
		t.Fatalf("notify: %q, want READY=1", got)
	}
	c, _ := api.NewClient("http://"+ln.Addr().String(), api.ClientOptions{})
	if err := c.Health(bg); err != nil {
		t.Fatalf("health through the passed socket: %v", err)
	}
	h := &harness{t: t}
	if _, req := h.registerRequest("xena@example.com"); true {
		if _, err := c.Register(bg, req); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if got := readNotify(t, notify); !strings.Contains(got, "STOPPING=1") {
		t.Fatalf("notify: %q, want STOPPING=1", got)
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child exit: %v", err)
	}
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir under the given names.
func selfSigned(t *testing.T, dir, certName, keyName string) *x509.CertPool {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ov-server test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func TestMainTLS(t *testing.T) {
	check := func(t *testing.T, r *running, pool *x509.CertPool) {
		if !strings.HasPrefix(r.shown, "https://127.0.0.1:") {
			t.Fatalf("listening line: %q", r.shown)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(r.shown + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", resp.Proto)
		}
		c, _ := api.NewClient(r.shown, api.ClientOptions{Transport: tr})
		if err := c.Health(bg); err != nil {
			t.Fatal(err)
		}
		if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
			t.Errorf("negotiated %v, want TLS 1.3", resp.TLS)
		}
		// The attack: a client that offers at most TLS 1.2 (or 1.1) is refused in the handshake.
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS11} {
			old := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: v}}
			if _, err := (&http.Client{Transport: old}).Get(r.shown + "/healthz"); err == nil {
				t.Errorf("a client limited to %s was served", tls.VersionName(v))
			} else if !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("%s client: %v, want a protocol version alert", tls.VersionName(v), err)
			}
		}
	}
	t.Run("flags", func(t *testing.T) {
		dir := t.TempDir()
		pool := selfSigned(t, dir, "cert.pem", "key.pem")
		r := startMain(t, "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "ov.db"),
			"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
		check(t, r, pool)
	})
	t.Run("credentials directory", func(t *testing.T) {
		dir := t.TempDir()
		pool := selfSigned(t, dir, "tls.crt", "tls.key")
		t.Setenv("CREDENTIALS_DIRECTORY", dir)
		r := startMain(t, "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "ov.db"))
		check(t, r, pool)
	})
}

// flagLine is one flag of pflag's usage output: "  --name PLACEHOLDER   usage" (bool flags: "--name[=true|false]").
var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)(\[=true\|false\])?(?: (.*?))?\s{3,}\S`)

// TestMainHelp: `ov-server --help` names its commands, and every flag of every command shows a
// placeholder that is one upper-case word (not a phrase taken from backquotes, not a Go type name).
func TestMainHelp(t *testing.T) {
	help := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(bg, args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errb.String())
		}
		return out.String() + errb.String()
	}
	top := help("--help")
	for _, want := range []string{"\n  invite create|list|revoke ", "\n  backup FILE ", "\n  restore FILE ", "SIGHUP"} {
		if !strings.Contains(top, want) {
			t.Errorf("ov-server --help does not show %q:\n%s", want, top)
		}
	}
	goTypes := map[string]bool{"string": true, "int": true, "int64": true, "uint": true, "float": true, "float64": true,
		"duration": true, "bool": true, "strings": true, "stringSlice": true, "stringArray": true, "ip": true}
	placeholder := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	for _, args := range [][]string{{"--help"}, {"invite", "--help"}, {"backup", "--help"}, {"restore", "--help"}} {
		out := help(args...)
		n := 0
		for _, line := range strings.Split(out, "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n++
			name, isBool, ph := m[1], m[2] != "", m[3]
			switch {
			case isBool && ph != "":
				t.Errorf("%v: bool flag --%s has a placeholder %q", args, name, ph)
			case isBool:
			case !placeholder.MatchString(ph) || goTypes[ph]:
				t.Errorf("%v: --%s shows placeholder %q, want one upper-case word such as FILE or N", args, name, ph)
			}
		}
		if n == 0 || (args[0] == "--help" && n < 30) {
			t.Errorf("%v: found %d flag lines in:\n%s", args, n, out)
		}
	}
}

// certFingerprint is the SHA-256 of the DER certificate in the PEM file path.
func certFingerprint(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:])
}

// servedFingerprint makes a TLS handshake with addr and returns the SHA-256 of the leaf certificate.
func servedFingerprint(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) // the fingerprint is what is checked
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:])
}

// replaceFile writes data to path the way a certificate renewal does: a new file renamed over the old.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// TestMainSIGHUPReloadsTLS runs ov-server as its own process (this test binary standing in for it,
// with the real Main and its real signal handling) on --tls-cert/--tls-key files, renews the
// certificate on disk and sends SIGHUP: the next handshake presents the new certificate, and the
// process is the same. A broken renewal (a key that does not match the certificate) is refused
// with a logged error, and the previous certificate keeps being served.
func TestMainSIGHUPReloadsTLS(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	selfSigned(t, dir, "tls.crt", "tls.key")
	selfSigned(t, dir, "new.crt", "new.key")
	selfSigned(t, dir, "other.crt", "other.key")
	first, second := certFingerprint(t, crt), certFingerprint(t, filepath.Join(dir, "new.crt"))
	if first == second {
		t.Fatal("two generated certificates are equal")
	}
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OV_SERVER_TEST_MAIN=1", "NOTIFY_SOCKET="+notifyPath,
		"OV_SERVER_TEST_ARGS="+strings.Join([]string{"--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "ov.db"),
			"--tls-cert", crt, "--tls-key", key}, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var logText syncBuffer
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logText.Write([]byte(sc.Text() + "\n"))
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(what string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("ov-server exited while waiting for %q:\n%s", what, logText.String())
				}
				if strings.Contains(l, what) {
					return l
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no line with %q:\n%s", what, logText.String())
			}
		}
	}
	_, addr, _ := strings.Cut(waitLine("ov-server: listening on https://"), "https://")
	addr, _, _ = strings.Cut(addr, " ")
	if got := readNotify(t, notify); !strings.Contains(got, "READY=1") {
		t.Fatalf("notify: %q, want READY=1", got)
	}
	if got := servedFingerprint(t, addr); got != first {
		t.Fatalf("served %s at start, want the installed certificate %s", got, first)
	}
	// sighup sends SIGHUP and waits for RELOADING=1, then READY=1, as systemd's ExecReload does.
	sighup := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if got := readNotify(t, notify); !strings.Contains(got, "RELOADING=1") || !strings.Contains(got, "MONOTONIC_USEC=") {
			t.Fatalf("notify after SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", got)
		}
		if got := readNotify(t, notify); !strings.Contains(got, "READY=1") {
			t.Fatalf("notify after reloading: %q, want READY=1", got)
		}
	}

	// A renewal: new certificate and key in place, then SIGHUP.
	newCrt, _ := os.ReadFile(filepath.Join(dir, "new.crt"))
	newKey, _ := os.ReadFile(filepath.Join(dir, "new.key"))
	replaceFile(t, crt, newCrt)
	replaceFile(t, key, newKey)
	if got := servedFingerprint(t, addr); got != first {
		t.Fatalf("served %s before SIGHUP, want the old %s still", got, first)
	}
	sighup()
	waitLine("reloaded TLS certificate")
	if got := servedFingerprint(t, addr); got != second {
		t.Fatalf("after SIGHUP served %s, want the renewed certificate %s", got, second)
	}

	// A broken renewal: another certificate whose key is not there (the key file still holds new.key).
	otherCrt, _ := os.ReadFile(filepath.Join(dir, "other.crt"))
	replaceFile(t, crt, otherCrt)
	sighup()
	l := waitLine("reload TLS certificate")
	if !strings.Contains(l, "level=error") || !strings.Contains(l, "keeping the old one") ||
		!strings.Contains(l, crt) || !strings.Contains(l, "private key does not match public key") {
		t.Errorf("log line of the broken reload: %q, want an error naming %s and the mismatch", l, crt)
	}
	if strings.Contains(logText.String(), "PRIVATE KEY") {
		t.Errorf("the log shows key material:\n%s", logText.String())
	}
	if got := servedFingerprint(t, addr); got != second {
		t.Fatalf("after a broken renewal served %s, want the previous certificate %s kept", got, second)
	}
	// A file that is not PEM at all is refused the same way.
	replaceFile(t, crt, []byte("not a certificate\n"))
	sighup()
	if l := waitLine("reload TLS certificate"); !strings.Contains(l, "keeping the old one") {
		t.Errorf("garbage certificate: %q", l)
	}
	if got := servedFingerprint(t, addr); got != second {
		t.Fatalf("after a garbage certificate served %s, want %s kept", got, second)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ov-server exit after SIGTERM: %v\n%s", err, logText.String())
	}
}
