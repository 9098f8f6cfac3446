// SPDX-License-Identifier: Apache-2.0

package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/cli"
	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/pgstore"
	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

// TestMain makes the test binary the real ov and ov-server when it runs under those names.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "ov":
		cli.UseTestKDF()
		os.Exit(cli.Main(context.Background(), os.Args[1:], cli.OSStdio()))
	case "ov-server":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := server.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type world struct {
	t   *testing.T
	dir string
	env []string
	pw  string
	lb  *balancer
}

// balancer is the load balancer in front of the instances: the one URL the ov CLI knows. It sends
// every request to one chosen instance, or alternates between them request by request.
type balancer struct {
	url     string
	mu      sync.Mutex
	to      int // index of the instance, or -1: alternate
	next    int
	proxies []*httputil.ReverseProxy
	hits    []int
}

func (b *balancer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	i := b.to
	if i < 0 {
		i = b.next % len(b.proxies)
		b.next++
	}
	b.hits[i]++
	p := b.proxies[i]
	b.mu.Unlock()
	p.ServeHTTP(rw, r)
}

// route sends every request to instance i (-1: alternate) and returns the hit counts so far.
func (b *balancer) route(i int) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.to = i
	return slices.Clone(b.hits)
}

func (b *balancer) hitCounts() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.hits)
}

// replace points instance i of the balancer at s (a server started to take the place of another).
func (b *balancer) replace(i int, s *srv) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.proxies[i] = proxyTo(s)
}

func proxyTo(s *srv) *httputil.ReverseProxy {
	u, err := url.Parse(s.url)
	if err != nil {
		panic(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.ErrorLog = log.New(io.Discard, "", 0)
	return p
}

// balance puts a load balancer in front of the servers.
func (w *world) balance(servers ...*srv) *balancer {
	b := &balancer{to: -1, hits: make([]int, len(servers))}
	for _, s := range servers {
		b.proxies = append(b.proxies, proxyTo(s))
	}
	ts := httptest.NewServer(b)
	w.t.Cleanup(ts.Close)
	b.url = ts.URL
	w.lb = b
	return b
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := testutil.SafeTempDir(t)
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ov", "ov-server"} {
		if err := os.Symlink(exe, filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{t: t, dir: dir, pw: filepath.Join(dir, "pw")}
	w.env = []string{"HOME=" + dir, "PATH=" + bin + ":/usr/bin:/bin", "OV_SERVER=",
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_STATE_HOME=" + filepath.Join(dir, "state"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}
	if err := os.WriteFile(w.pw, []byte("correct horse battery staple"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// srv is one real ov-server process.
type srv struct {
	url    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

// start runs ov-server on 127.0.0.1 (a free port) with --db dsn and waits until it listens.
func (w *world) start(dsn string) *srv {
	w.t.Helper()
	cmd := exec.Command(filepath.Join(w.dir, "bin", "ov-server"), "--listen", "127.0.0.1:0", "--db", dsn,
		"--rate-key", "0", "--rate-ip", "0", "--rate-login", "0")
	cmd.Env = w.env
	pipe, err := cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	s := &srv{cmd: cmd, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	w.t.Cleanup(func() { s.stop() })
	select {
	case s.url = <-urls:
		return s
	case <-s.done:
		w.t.Fatalf("ov-server exited before listening:\n%s", s.log())
	case <-time.After(60 * time.Second):
		w.t.Fatalf("ov-server did not listen within 60s:\n%s", s.log())
	}
	return nil
}

func (s *srv) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func (s *srv) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// kill ends the server with SIGKILL: no shutdown, no cleanup.
func (s *srv) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// ov runs the real ov CLI against the load balancer and returns stdout, stderr and the exit code.
func (w *world) ov(stdin string, args ...string) (string, string, int) {
	return w.ovAs(nil, stdin, args...)
}

// ovAs is ov with extra environment variables.
func (w *world) ovAs(env []string, stdin string, args ...string) (string, string, int) {
	cmd := exec.Command(filepath.Join(w.dir, "bin", "ov"), append(args, "--server", w.lb.url)...)
	cmd.Env = append(slices.Clone(w.env), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Errorf("ov %v: %v", args, err)
		code = -1
	}
	return out.String(), errb.String(), code
}

// must runs ov and fails the test unless it exits 0.
func (w *world) must(stdin string, args ...string) string {
	w.t.Helper()
	out, errs, code := w.ov(stdin, args...)
	if code != 0 {
		w.t.Fatalf("ov %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// export returns the env's secrets as the real ov verifies and decrypts them.
func (w *world) export(app, env string) map[string]string {
	w.t.Helper()
	out := w.must("", "secret", "export", "--app", app, "--env", env, "--format", "json", "--password-file", w.pw)
	m := map[string]string{}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		w.t.Fatalf("export %s/%s: %v\n%s", app, env, err, out)
	}
	return m
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// served checks that instance i answered requests between two hit counts.
func served(t *testing.T, before, after []int, i int, what string) {
	t.Helper()
	for j := range before {
		d := after[j] - before[j]
		if j == i && d == 0 || j != i && d != 0 {
			t.Fatalf("%s: instance hits %v -> %v, want only instance %d", what, before, after, i)
		}
	}
}

// TestTwoServersOneAccount: two ov-server processes on one PostgreSQL database, started at once
// (so they migrate the new database concurrently), behind one load balancer; what the real ov
// writes through one is read through the other, both ways, and through both alternately.
func TestTwoServersOneAccount(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w := newWorld(t)
	var a, b *srv
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = w.start(dsn) }()
	go func() { defer wg.Done(); b = w.start(dsn) }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow()
	}
	lb := w.balance(a, b)

	h0 := lb.route(0)
	w.must("", "auth", "register", "--email", "op@example.com", "--password-file", w.pw)
	envFile := filepath.Join(w.dir, "app.env")
	os.WriteFile(envFile, []byte("DATABASE_URL=postgres://u:p@db/x\nAPI_KEY=k-123\nEMPTY=\n"), 0o600)
	out := w.must("", "secret", "import", envFile, "--app", "myapp", "--env", "prod", "--password-file", w.pw)
	if !strings.Contains(out, "Imported 3/3") {
		t.Fatalf("import through A: %s", out)
	}
	h1 := lb.route(1)
	served(t, h0, h1, 0, "register and import")
	out = w.must("", "secret", "list", "--app", "myapp", "--env", "prod", "--password-file", w.pw)
	for _, n := range []string{"DATABASE_URL", "API_KEY", "EMPTY"} {
		if !strings.Contains(out, n) {
			t.Errorf("list through B lacks %s:\n%s", n, out)
		}
	}
	want := map[string]string{"DATABASE_URL": "postgres://u:p@db/x", "API_KEY": "k-123", "EMPTY": ""}
	if got := w.export("myapp", "prod"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("export through B: %v, want %v", keys(got), keys(want))
	}
	w.must("from b\n", "secret", "set", "FROM_B", "--app", "myapp", "--env", "prod", "--password-file", w.pw)
	h2 := lb.route(0)
	served(t, h1, h2, 1, "list, export and set")
	if got := w.must("", "secret", "get", "FROM_B", "--app", "myapp", "--env", "prod", "--password-file", w.pw); got != "from b\n" {
		t.Fatalf("get through A: %q", got)
	}
	served(t, h2, lb.route(-1), 0, "get")
	// Alternating request by request: one command's requests land on both instances.
	w.must("both\n", "secret", "set", "BOTH", "--app", "myapp", "--env", "prod", "--password-file", w.pw)
	want["FROM_B"], want["BOTH"] = "from b", "both"
	if got := w.export("myapp", "prod"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("export alternating: %v, want %v", keys(got), keys(want))
	}
	t.Logf("requests per instance: %v", lb.hitCounts())
}

// writerEnv gives concurrent ov processes their own state and cache directories: the same
// device, as if on separate machines. (ov processes sharing one state directory at once trip over
// each other's rollback state file: see the report of this branch.)
func (w *world) writerEnv(name string) []string {
	return []string{"XDG_STATE_HOME=" + filepath.Join(w.dir, "state-"+name), "XDG_CACHE_HOME=" + filepath.Join(w.dir, "cache-"+name)}
}

// setRetrying sets name=value, retrying while the server answers that the env moved on (a stale
// commit, 409). It returns the number of conflicts it met.
func (w *world) setRetrying(who []string, app, env, name, value string) int {
	conflicts := 0
	for range 100 {
		out, errs, code := w.ovAs(who, value+"\n", "secret", "set", name, "--app", app, "--env", env, "--password-file", w.pw)
		if code == 0 {
			return conflicts
		}
		if !isConflict(errs) {
			w.t.Errorf("set %s: exit %d, not a conflict:\n%s%s", name, code, out, errs)
			return conflicts
		}
		conflicts++
	}
	w.t.Errorf("set %s: still conflicting after 100 tries", name)
	return conflicts
}

func isConflict(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "conflict") || strings.Contains(s, "changed")
}

// TestRacingWritersTwoInstances: writers change one environment at once through a load balancer
// that alternates between two instances request by request. Each retries on a conflict; at the
// end every write is there (a compare-and-swap broken across instances loses some, or leaves
// records that the signed manifest does not match, which the real ov's export refuses).
func TestRacingWritersTwoInstances(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w := newWorld(t)
	a := w.start(dsn)
	b := w.start(dsn)
	lb := w.balance(a, b)
	w.must("", "auth", "register", "--email", "op@example.com", "--password-file", w.pw)
	w.must("seed\n", "secret", "set", "SEED", "--app", "myapp", "--env", "prod", "--password-file", w.pw)

	const writers, each = 4, 4
	want := map[string]string{"SEED": "seed"}
	var mu sync.Mutex
	conflicts := 0
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				name, value := fmt.Sprintf("W%d_%d", i, j), fmt.Sprintf("value %d.%d", i, j)
				c := w.setRetrying(w.writerEnv(fmt.Sprint(i)), "myapp", "prod", name, value)
				mu.Lock()
				want[name] = value
				conflicts += c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d writes on two instances, %d conflicts retried, requests per instance %v", writers*each, conflicts, lb.hitCounts())
	for i := range 2 {
		lb.route(i)
		got := w.export("myapp", "prod")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("through instance %d: %d secrets %v, want %d %v", i, len(got), keys(got), len(want), keys(want))
		}
	}
	checkStore(t, dsn)
}

// checkStore opens the database directly and checks every environment: its record count, its
// records and its manifest's sequence agree (the deeper check, signature and hashes, is the real
// ov's export).
func checkStore(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	db, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Pool().Query(ctx, `SELECT id FROM envs`)
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]byte
	for rows.Next() {
		var id []byte
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		t.Fatal("no environments in the database")
	}
	for _, id := range ids {
		v, err := db.ReadEnv(ctx, id, store.ReadOptions{Records: store.RecordsFull})
		if err != nil {
			t.Fatal(err)
		}
		if v.Env.Count != len(v.Records) || (v.Env.Seq == 0) != (len(v.Env.Manifest) == 0) {
			t.Errorf("env %x: count %d, %d records, seq %d, manifest %d bytes", id, v.Env.Count, len(v.Records), v.Env.Seq, len(v.Env.Manifest))
		}
	}
}

// TestKillMidCommit kills a real ov-server with SIGKILL while writers stream commits to three
// environments through it. A new server on the same database then serves every environment
// intact (the real ov verifies each manifest's signature and every record against it), and every
// write that the killed server acknowledged is there.
func TestKillMidCommit(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w := newWorld(t)
	a := w.start(dsn)
	lb := w.balance(a)
	w.must("", "auth", "register", "--email", "op@example.com", "--password-file", w.pw)
	envs := []string{"prod", "staging", "dev"}
	acked := make([]map[string]string, len(envs))
	for i, e := range envs {
		w.must("seed\n", "secret", "set", "SEED", "--app", "myapp", "--env", e, "--password-file", w.pw)
		acked[i] = map[string]string{"SEED": "seed"}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var killed atomic.Bool
	total := 0
	first := make(chan struct{}, 64)
	for i, e := range envs {
		for k := range 2 { // two writers per env, so that commits also conflict
			wg.Add(1)
			who := w.writerEnv(fmt.Sprintf("%s-%d", e, k))
			go func() {
				defer wg.Done()
				for j := 0; ; j++ {
					name, value := fmt.Sprintf("K%d_%d", k, j), fmt.Sprintf("v%d.%d-%s", k, j, e)
					_, errs, code := w.ovAs(who, value+"\n", "secret", "set", name, "--app", "myapp", "--env", e, "--password-file", w.pw)
					if code != 0 {
						if killed.Load() {
							return // killed: this write may or may not have landed
						}
						if !isConflict(errs) {
							t.Errorf("set through the live server: exit %d: %s", code, errs)
							return
						}
						continue
					}
					mu.Lock()
					acked[i][name] = value
					total++
					mu.Unlock()
					select {
					case first <- struct{}{}:
					default:
					}
				}
			}()
		}
	}
	// Let commits flow, then kill the server in the middle of them.
	for range 6 {
		select {
		case <-first:
		case <-time.After(2 * time.Minute):
			killed.Store(true)
			a.kill()
			t.Fatal("the writers did not get 6 commits through in 2 minutes")
		}
	}
	time.Sleep(300 * time.Millisecond)
	killed.Store(true)
	a.kill()
	wg.Wait()
	t.Logf("%d writes acknowledged before SIGKILL", total)

	b := w.start(dsn)
	lb.replace(0, b) // the same URL, served by the new instance
	before := lb.hitCounts()
	for i, e := range envs {
		got := w.export("myapp", e)
		for name, value := range acked[i] {
			if got[name] != value {
				t.Errorf("%s: acknowledged %s lost or changed after SIGKILL (got %q)", e, name, got[name])
			}
		}
		// Anything else present was written by a writer whose answer the kill cut off: at most
		// one per writer.
		if extra := len(got) - len(acked[i]); extra < 0 || extra > 2 {
			t.Errorf("%s: %d secrets, %d acknowledged", e, len(got), len(acked[i]))
		}
		// The env still takes commits.
		w.must("after\n", "secret", "set", "AFTER", "--app", "myapp", "--env", e, "--password-file", w.pw)
	}
	if lb.hitCounts()[0] == before[0] {
		t.Fatal("the new instance served nothing")
	}
	checkStore(t, dsn)
}
