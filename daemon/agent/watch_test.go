// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
	"github.com/opaquevault/opaquevault/internal/testutil"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// These tests run the watcher against a real ov-server (SQLite) on loopback, behind a proxy that
// can forge its answers, and read with a real machine key. The service manager is a recorder: the
// D-Bus call itself is tested in internal/sd against a stand-in org.freedesktop.systemd1.

// ovServer is a real ov-server that can be stopped and started again on the same address and
// database, like a restart.
type ovServer struct {
	t    *testing.T
	db   string
	addr string
	mu   sync.Mutex
	hs   *http.Server
	srv  *server.Server
	st   interface{ Close() error }
}

func (s *ovServer) start() {
	s.t.Helper()
	st, err := sqlitestore.Open(context.Background(), s.db)
	if err != nil {
		s.t.Fatal(err)
	}
	lim := server.DefaultLimits()
	lim.KeyRate, lim.IPRate, lim.LoginRate = server.Rate{}, server.Rate{}, server.Rate{}
	srv, err := server.New(context.Background(), server.Config{Store: st, Limits: lim})
	if err != nil {
		s.t.Fatal(err)
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	for i := 0; ; i++ { // the port of the stopped server may take a moment to be free
		if l, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = l.Addr().String()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	s.mu.Lock()
	s.hs, s.srv, s.st = hs, srv, st
	s.mu.Unlock()
}

func (s *ovServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs == nil {
		return
	}
	s.srv.StopWatches()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.hs.Shutdown(ctx)
	s.srv.Close()
	_ = s.st.Close()
	s.hs = nil
}

// forger sits between the watcher and the server; when forge is set it rewrites answers.
type forger struct {
	mu    sync.Mutex
	forge func(w http.ResponseWriter, r *http.Request) bool // true: answered
}

type watchFixture struct {
	t      *testing.T
	srv    *ovServer
	front  string
	fg     *forger
	v      *remote.Vault
	reader *remote.MachineReader
	units  *recorder
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

func newWatchFixture(t *testing.T) *watchFixture {
	t.Helper()
	vault.UseTestKDF()
	f := &watchFixture{t: t, fg: &forger{}, units: newRecorder(), logs: &logBuffer{}}
	f.srv = &ovServer{t: t, db: filepath.Join(t.TempDir(), "ov.db")}
	f.srv.start()
	t.Cleanup(f.srv.stop)

	// The front proxy always points at the server's (fixed) address.
	target, _ := url.Parse("http://" + f.srv.addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.fg.mu.Lock()
		fn := f.fg.forge
		f.fg.mu.Unlock()
		if fn != nil && fn(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = front.Serve(l) }()
	t.Cleanup(func() { _ = front.Close() })
	f.front = "http://" + l.Addr().String()

	dev := remote.NewDevice("test")
	p := vault.NewKDFParams()
	p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
	reg, err := remote.NewAccount("op@example.com", []byte("correct horse battery staple"), p, dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(dev.Token).Register(bg, reg.Request); err != nil {
		t.Fatal(err)
	}
	hw, err := remote.OpenHighWater(filepath.Join(testutil.SafeTempDir(t), "hw.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.v = &remote.Vault{Client: f.client(dev.Token), Account: reg.Account, HighWater: hw}
	f.set("DATABASE_URL", "postgres://one", "STRIPE_SECRET_KEY", "sk_one", "GREETING", "hello-one")
	m, err := f.v.IssueMachine(bg, remote.MachineRequest{Scopes: []remote.ScopeName{{App: "myapp", Env: "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Key.Wipe)
	tok := m.Key.Token()
	// Like the agent's client: answers are cached, and a watch that sees a commit clears the cache.
	cl, err := api.NewClient(f.front, api.ClientOptions{Token: string(tok), CacheTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mhw, err := remote.OpenHighWater(filepath.Join(testutil.SafeTempDir(t), "mhw.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.reader = &remote.MachineReader{Client: cl, Key: m.Key, HighWater: mhw, MaxAge: time.Hour}
	return f
}

var bg = context.Background()

func (f *watchFixture) client(token string) *api.Client {
	cl, err := api.NewClient(f.front, api.ClientOptions{Token: token})
	if err != nil {
		f.t.Fatal(err)
	}
	return cl
}

// set writes name=value pairs to myapp/production.
func (f *watchFixture) set(kv ...string) {
	f.t.Helper()
	_, err := f.v.Write(bg, "myapp", "production", true, func(*remote.Env) (*remote.Change, error) {
		ch := &remote.Change{}
		for i := 0; i < len(kv); i += 2 {
			ch.Set = append(ch.Set, remote.Secret{Name: kv[i], Value: []byte(kv[i+1])})
		}
		return ch, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *watchFixture) watch(ps ...agent.RestartPolicy) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	log := logrus.New()
	log.SetOutput(f.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	go func() {
		defer close(f.done)
		agent.Watch(ctx, agent.WatchConfig{
			Policies: ps, Units: f.units, Log: logrus.NewEntry(log), MaxBackoff: 500 * time.Millisecond,
			Read: func(ctx context.Context, app, env string) (*remote.Env, error) {
				e, _, err := f.reader.Read(ctx, app, env)
				return e, err
			},
			Watch: f.reader.Client.WatchEnv,
		})
	}()
	f.t.Cleanup(func() { cancel(); <-f.done })
	f.logs.waitFor(f.t, `"msg":"watching for changes"`)
}

func policy(unit string, order int, names ...string) agent.RestartPolicy {
	p := agent.RestartPolicy{Unit: unit, App: "myapp", Env: "production", Action: agent.RestartAction,
		Interval: time.Second, Order: order, Timeout: 5 * time.Second}
	if len(names) == 1 && names[0] == "*" {
		p.All = true
	} else {
		p.Names = names
	}
	return p
}

// recorder stands in for systemd: it records the restarts it is asked for.
type recorder struct {
	mu    sync.Mutex
	calls []call
	ch    chan call
}

type call struct {
	verb, unit string
	at         time.Time
}

func newRecorder() *recorder { return &recorder{ch: make(chan call, 64)} }

func (r *recorder) add(verb, unit string) error {
	c := call{verb, unit, time.Now()}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.ch <- c
	return nil
}

func (r *recorder) ReloadOrTryRestart(_ context.Context, unit string) error {
	return r.add("reload-or-try-restart", unit)
}
func (r *recorder) TryRestart(_ context.Context, unit string) error {
	return r.add("try-restart", unit)
}
func (r *recorder) ActiveState(context.Context, string) (string, error) {
	return "active", nil
}

// next waits for the next call.
func (r *recorder) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no restart within 20s")
	}
	return call{}
}

// none checks that nothing was asked for.
func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.ch:
		t.Fatalf("unexpected %s of %s", c.verb, c.unit)
	default:
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// entries returns the JSON log entries that contain sub.
func (l *logBuffer) entries(sub string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		if !strings.Contains(line, sub) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) waitFor(t *testing.T, sub string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e := l.entries(sub); len(e) > 0 {
			return e[len(e)-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log entry with %s in:\n%s", sub, l.String())
	return nil
}

// noValues checks that no secret value ever reached the log.
func (f *watchFixture) noValues(values ...string) {
	f.t.Helper()
	out := f.logs.String()
	for _, v := range values {
		if strings.Contains(out, v) {
			f.t.Fatalf("a secret value is in the log:\n%s", out)
		}
	}
}

func TestWatchRestartsOnlyUnitsWhoseSecretsChanged(t *testing.T) {
	f := newWatchFixture(t)
	f.watch(policy("web.service", 1, "DATABASE_URL"), policy("billing.service", 2, "STRIPE_SECRET_KEY"))

	f.set("DATABASE_URL", "postgres://two")
	c := f.units.next(t)
	if c.verb != "try-restart" || c.unit != "web.service" {
		t.Fatalf("got %s %s, want try-restart web.service", c.verb, c.unit)
	}
	e := f.logs.waitFor(t, `"unit":"web.service"`)
	if e["secrets"] != "DATABASE_URL@v2" || e["app"] != "myapp" || e["env"] != "production" || e["seq"] != float64(2) {
		t.Fatalf("journal entry does not say why: %v", e)
	}
	f.logs.waitFor(t, `"msg":"unit restarted"`)

	// A name no policy lists: nothing restarts, and the journal says so.
	f.set("GREETING", "hello-two")
	f.logs.waitFor(t, `"secrets":"GREETING@v2"`)
	f.logs.waitFor(t, `does not list`)
	time.Sleep(300 * time.Millisecond)
	f.units.none(t)

	f.set("STRIPE_SECRET_KEY", "sk_two")
	if c := f.units.next(t); c.unit != "billing.service" {
		t.Fatalf("restarted %s, want billing.service", c.unit)
	}
	f.units.none(t)
	f.noValues("postgres://one", "postgres://two", "sk_one", "sk_two", "hello-one", "hello-two")
}

func TestWatchRollsInOrderAndLimitsRate(t *testing.T) {
	f := newWatchFixture(t)
	f.watch(policy("b.service", 2, "*"), policy("a.service", 5, "DATABASE_URL"), policy("c.service", 1, "DATABASE_URL", "GREETING"))

	f.set("DATABASE_URL", "postgres://two")
	var got []string
	for range 3 {
		got = append(got, f.units.next(t).unit)
	}
	if strings.Join(got, " ") != "c.service b.service a.service" {
		t.Fatalf("restart order %v, want c, b, a (by order)", got)
	}
	// A second change within the interval: each unit restarts once more, not before its interval.
	f.set("DATABASE_URL", "postgres://three")
	seen := map[string]bool{}
	for range 3 {
		c := f.units.next(t)
		seen[c.unit] = true
		f.units.mu.Lock()
		var first time.Time
		for _, p := range f.units.calls {
			if p.unit == c.unit {
				first = p.at
				break
			}
		}
		f.units.mu.Unlock()
		// The restarter stamps a restart just before it calls systemd, and the recorder just after:
		// allow for that gap (not for a missing rate limit, which restarts within milliseconds).
		if d := c.at.Sub(first); d < 900*time.Millisecond {
			t.Fatalf("%s restarted again after %s, within its interval of 1s", c.unit, d)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("second round restarted %v", seen)
	}
}

func TestWatchIgnoresForgedChanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		forge func(st *api.EnvState)
	}{
		// A version changed in the manifest the server cannot sign.
		{"tampered manifest", func(st *api.EnvState) {
			st.Seq++
			st.Manifest = bytes.Clone(st.Manifest)
			st.Manifest[len(st.Manifest)/2] ^= 1
		}},
		// No signature at all.
		{"unsigned manifest", func(st *api.EnvState) { st.Seq++; st.ManifestSig = nil }},
		// Only the seq moved: the signed manifest is the old one.
		{"seq only", func(st *api.EnvState) { st.Seq++ }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newWatchFixture(t)
			// The forger is in place before the watch starts: the first read (the base) is genuine,
			// every watch claims a commit at once, and every read after the first watch is forged.
			var forged atomic.Int32
			var armed atomic.Bool
			f.fg.mu.Lock()
			f.fg.forge = func(w http.ResponseWriter, r *http.Request) bool {
				switch {
				case strings.HasSuffix(r.URL.Path, "/watch"):
					armed.Store(true)
					// The server claims a commit at once.
					after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"seq":%d}`+"\n", after+1)
					return true
				case armed.Load() && strings.HasPrefix(r.URL.Path, "/v1/envs/"):
					req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://"+f.srv.addr+r.URL.Path, nil)
					req.Header.Set("Authorization", r.Header.Get("Authorization"))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return false
					}
					defer resp.Body.Close()
					var st api.EnvState
					if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
						return false
					}
					tc.forge(&st)
					forged.Add(1)
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(&st)
					return true
				}
				return false
			}
			f.fg.mu.Unlock()
			f.watch(policy("web.service", 1, "*"))
			// Several forged rounds: each is refused, none restarts anything.
			deadline := time.Now().Add(20 * time.Second)
			for len(f.logs.entries(`nothing restarted`)) < 3 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := len(f.logs.entries(`nothing restarted`)); n < 3 {
				t.Fatalf("forged rounds refused: %d, want 3:\n%s", n, f.logs.String())
			}
			f.units.none(t)
			f.fg.mu.Lock()
			if forged.Load() == 0 {
				t.Fatal("the forger never answered a read")
			}
			f.fg.forge = nil
			f.fg.mu.Unlock()

			// A genuine commit still restarts: the watcher was not stuck, and this test can see a restart.
			f.set("DATABASE_URL", "postgres://two")
			if c := f.units.next(t); c.unit != "web.service" {
				t.Fatalf("restarted %s", c.unit)
			}
			if e := f.logs.waitFor(t, `"unit":"web.service"`); e["secrets"] != "DATABASE_URL@v2" {
				t.Fatalf("journal entry: %v", e)
			}
		})
	}
}

func TestWatchResumesAfterServerRestart(t *testing.T) {
	f := newWatchFixture(t)
	f.watch(policy("web.service", 1, "STRIPE_SECRET_KEY"))
	f.srv.stop()
	f.logs.waitFor(t, `"msg":"watch failed; retrying"`)
	f.srv.start()
	f.set("STRIPE_SECRET_KEY", "sk_two")
	if c := f.units.next(t); c.unit != "web.service" {
		t.Fatalf("restarted %s", c.unit)
	}
	f.logs.waitFor(t, `"msg":"watch resumed"`)
	if e := f.logs.waitFor(t, `"unit":"web.service"`); e["secrets"] != "STRIPE_SECRET_KEY@v2" {
		t.Fatalf("journal entry: %v", e)
	}
	f.noValues("sk_one", "sk_two")
}

// readerSource is the machine read path as the agent's Source, with the watch of its client.
type readerSource struct{ r *remote.MachineReader }

func (s readerSource) Read(ctx context.Context, app, env string) (*remote.Env, error) {
	e, _, err := s.r.Read(ctx, app, env)
	return e, err
}

func (s readerSource) WatchEnv(ctx context.Context, envID string, after uint64) (uint64, bool, error) {
	return s.r.Client.WatchEnv(ctx, envID, after)
}

// The whole agent: Serve loads the policies of its restart directory and restarts the unit whose
// secret changed, with the key it holds.
func TestServeRestartsUnits(t *testing.T) {
	needRoot(t)
	f := newWatchFixture(t)
	dir := filepath.Join(safeDir(t), "restart.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "myapp.service.conf"), []byte("app = myapp\nenv = production\nnames = DATABASE_URL\naction = reload\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A policy for a scope this agent does not serve is ignored.
	if err := os.WriteFile(filepath.Join(dir, "other.service.conf"), []byte("app = other\nenv = production\nnames = *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(safeDir(t), "ov", "agent.sock")
	l, err := agent.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(f.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Serve(ctx, agent.Config{
			Listeners: []net.Listener{l}, App: "myapp", Env: "production", Bus: agent.BusNone, Mode: agent.ModeUser,
			Open:       func(context.Context, *agent.Key) (agent.Source, error) { return readerSource{f.reader}, nil },
			Log:        logrus.NewEntry(log),
			RestartDir: dir, Units: f.units,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := localapi.NewClient(&localapi.Endpoint{Socket: sock, ListenerUIDs: []uint32{0}, System: true})
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
	f.logs.waitFor(t, `"msg":"watching for changes"`)
	if e := f.logs.waitFor(t, `does not serve`); e["unit"] != "other.service" {
		t.Fatalf("ignored policy: %v", e)
	}
	f.set("GREETING", "hello-two") // not listed: nothing
	f.logs.waitFor(t, `does not list`)
	f.units.none(t)
	f.set("DATABASE_URL", "postgres://two")
	if c := f.units.next(t); c.verb != "reload-or-try-restart" || c.unit != "myapp.service" {
		t.Fatalf("got %s %s", c.verb, c.unit)
	}
	if e := f.logs.waitFor(t, `"unit":"myapp.service"`); e["secrets"] != "DATABASE_URL@v2" {
		t.Fatalf("journal entry: %v", e)
	}
	f.noValues("postgres://one", "postgres://two", "hello-one", "hello-two", "sk_one")
}
