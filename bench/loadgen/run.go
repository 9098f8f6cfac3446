// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

type config struct {
	ovServer   string
	db         string
	clients    int
	dur        time.Duration
	secrets    int
	recordSize int
	phases     map[string]bool
	profileDir string
	factor     float64
	rounds     int
	legacy     bool
}

type bench struct {
	cfg     config
	dir     string
	acct    *account
	envs    []*envState
	envLock []sync.Mutex
	rows    []row
	ratios  []float64
	failed  bool
}

type row struct {
	phase     string
	instances int
	clients   string
	st        *stats
	cpu       time.Duration // server CPU in the window
	note      string
}

func run(args []string) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var c config
	var phases string
	fs.StringVar(&c.ovServer, "ov-server", "bin/ov-server", "the ov-server binary")
	fs.StringVar(&c.db, "db", "", "the --db of ov-server: a SQLite file (default: a new one in a temporary directory) or postgres://...")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients")
	fs.DurationVar(&c.dur, "duration", 5*time.Second, "length of each measured phase")
	fs.IntVar(&c.secrets, "secrets", 50, "secrets per environment")
	fs.IntVar(&c.recordSize, "record-size", 120, "bytes of one sealed secret")
	fs.StringVar(&phases, "phases", "replay,mix,mix2,overload", "phases to run, comma-separated")
	fs.StringVar(&c.profileDir, "cpu-profile-dir", "", "write ov-server's CPU profile of each phase to DIR/PHASE.pprof")
	fs.BoolVar(&c.legacy, "legacy", false, "the ov-server predates --metrics-listen and --cpu-profile: pass neither (no shed count)")
	fs.IntVar(&c.rounds, "rounds", 5, "replay: alternating rounds of the trivial server and ov-server")
	fs.Float64Var(&c.factor, "overload-factor", 4, "overload: offered load as a multiple of the mix throughput")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		c.phases[strings.TrimSpace(p)] = true
	}
	dir, err := os.MkdirTemp("", "ov-loadgen-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: error: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if c.db == "" {
		c.db = filepath.Join(dir, "ov-server.db")
	}
	if c.profileDir != "" {
		os.MkdirAll(c.profileDir, 0o755)
	}
	b := &bench{cfg: c, dir: dir}
	if err := b.all(); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: error: %v\n", err)
		return 1
	}
	if b.failed {
		return 1
	}
	return 0
}

func (b *bench) serverArgs(phase string) []string {
	args := []string{"--listen", "127.0.0.1:0", "--db", b.cfg.db, "--log-level", "warn", "--rate-key", "0", "--rate-ip", "0", "--rate-login", "0"}
	if b.cfg.legacy {
		return args
	}
	args = append(args, "--metrics-listen", "127.0.0.1:0")
	if b.cfg.profileDir != "" && phase != "" {
		args = append(args, "--cpu-profile", filepath.Join(b.cfg.profileDir, phase+".pprof"))
	}
	return args
}

func (b *bench) startServers(phase string, n int) ([]*proc, error) {
	var ps []*proc
	for i := range n {
		name := phase
		if n > 1 {
			name = fmt.Sprintf("%s-%d", phase, i+1)
		}
		p, err := start(b.cfg.ovServer, b.serverArgs(name)...)
		if err != nil {
			for _, q := range ps {
				q.stop()
			}
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func stopAll(ps []*proc) {
	for _, p := range ps {
		p.stop()
	}
}

func cpuOf(ps []*proc) time.Duration {
	var d time.Duration
	for _, p := range ps {
		d += p.cpu()
	}
	return d
}

func (b *bench) all() error {
	ctx := context.Background()
	fmt.Printf("loadgen: %s; Go %s; %d clients, %s per phase, %d secrets of %d bytes per environment; db %s\n",
		cpuInfo(), runtime.Version(), b.cfg.clients, b.cfg.dur, b.cfg.secrets, b.cfg.recordSize, b.cfg.db)
	ps, err := b.startServers("", 1)
	if err != nil {
		return err
	}
	err = b.setup(ctx, ps[0].url)
	if err == nil {
		err = b.captureBodies(ctx, ps[0].url)
	}
	stopAll(ps)
	if err != nil {
		return err
	}
	if b.cfg.phases["replay"] {
		if err := b.replayCompare(); err != nil {
			return err
		}
	}
	var capacity float64
	if b.cfg.phases["mix"] {
		st, err := b.mix("mix", 1)
		if err != nil {
			return err
		}
		capacity = st.rate()
	}
	if b.cfg.phases["mix2"] {
		if _, err := b.mix("mix2", 2); err != nil {
			return err
		}
	}
	if b.cfg.phases["overload"] {
		if capacity == 0 {
			return errors.New("the overload phase needs the mix phase (its throughput)")
		}
		if err := b.overload(capacity); err != nil {
			return err
		}
	}
	b.report()
	return nil
}

func (b *bench) setup(ctx context.Context, url string) error {
	anon, err := api.NewClient(url, api.ClientOptions{})
	if err != nil {
		return err
	}
	if b.acct, err = register(ctx, anon); err != nil {
		return err
	}
	dev, _ := api.NewClient(url, api.ClientOptions{Token: b.acct.token})
	for i := range b.cfg.clients {
		e, err := b.acct.newEnv(ctx, dev, fmt.Sprintf("app-%02d", i), b.cfg.secrets, b.cfg.recordSize)
		if err != nil {
			return err
		}
		b.envs = append(b.envs, e)
	}
	b.envLock = make([]sync.Mutex, len(b.envs))
	return nil
}

func (b *bench) bodiesFile() string { return filepath.Join(b.dir, "bodies.json") }

// captureBodies keeps ov-server's answers to the two requests, for the trivial server.
func (b *bench) captureBodies(ctx context.Context, url string) error {
	get := func(path, token string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	e := b.envs[0]
	m, err := get("/v1/machine", e.machineToken)
	if err != nil {
		return err
	}
	env, err := get("/v1/envs/"+hex.EncodeToString(e.envID), e.machineToken)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(bodies{Machine: m, Env: env})
	return os.WriteFile(b.bodiesFile(), out, 0o600)
}

// replayStep is one `ov run --machine-key`: the machine's grant, then its environment.
func (b *bench) replayStep(hc *http.Client, url func(i int) string) func(ctx context.Context, i int, w *worker) {
	return func(ctx context.Context, i int, w *worker) {
		e := b.envs[i%len(b.envs)]
		base := url(i)
		t := time.Now()
		code, err := httpGet(ctx, hc, base+"/v1/machine", e.machineToken)
		if ctx.Err() != nil {
			return
		}
		w.done(t, code, err)
		t = time.Now()
		code, err = httpGet(ctx, hc, base+"/v1/envs/"+hex.EncodeToString(e.envID), e.machineToken)
		if ctx.Err() != nil {
			return
		}
		w.done(t, code, err)
	}
}

// replayCompare measures the trivial server and ov-server on the same requests, alternating
// windows of the same length (rounds of each), so that a noisy neighbour hits both alike.
func (b *bench) replayCompare() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	triv, err := start(exe, "-trivial-serve", b.bodiesFile())
	if err != nil {
		return err
	}
	defer triv.stop()
	ps, err := b.startServers("replay", 1)
	if err != nil {
		return err
	}
	defer stopAll(ps)
	hc := newHTTPClient(b.cfg.clients)
	for _, p := range []*proc{triv, ps[0]} {
		closedLoop(b.cfg.clients, b.cfg.dur/10, b.replayStep(hc, func(int) string { return p.url }))
	}
	var ratios []float64
	for round := range b.cfg.rounds {
		var rates [2]float64
		for k, p := range []*proc{triv, ps[0]} {
			c0 := p.cpu()
			st := closedLoop(b.cfg.clients, b.cfg.dur, b.replayStep(hc, func(int) string { return p.url }))
			name := "replay `ov run --machine-key`: trivial server (baseline)"
			if k == 1 {
				name = "replay `ov run --machine-key`: ov-server"
			}
			if b.cfg.rounds > 1 {
				name += fmt.Sprintf(", round %d", round+1)
			}
			b.rows = append(b.rows, row{phase: name, instances: 1, clients: fmt.Sprint(b.cfg.clients), st: st, cpu: p.cpu() - c0})
			rates[k] = st.rate()
		}
		ratios = append(ratios, rates[1]/rates[0])
	}
	slices.Sort(ratios)
	b.ratios = ratios
	return nil
}

// mix: 90% reads by machine keys, 10% commits by the device, each client on its own environment.
func (b *bench) mix(phase string, n int) (*stats, error) {
	ps, err := b.startServers(phase, n)
	if err != nil {
		return nil, err
	}
	defer stopAll(ps)
	hc := newHTTPClient(b.cfg.clients)
	devs := make([]*api.Client, n)
	for i, p := range ps {
		devs[i], _ = api.NewClient(p.url, api.ClientOptions{Token: b.acct.token})
	}
	step := func(ctx context.Context, i int, w *worker) {
		e := b.envs[i%len(b.envs)]
		t := time.Now()
		if pick(0.1) {
			b.envLock[i%len(b.envs)].Lock()
			// A commit that started is finished, even past the phase's end.
			_, err := b.acct.changeOne(context.WithoutCancel(ctx), devs[i%n], e)
			b.envLock[i%len(b.envs)].Unlock()
			if ctx.Err() != nil {
				return
			}
			w.done(t, http.StatusOK, err)
			return
		}
		code, err := httpGet(ctx, hc, ps[i%n].url+"/v1/envs/"+hex.EncodeToString(e.envID), e.machineToken)
		if ctx.Err() != nil {
			return
		}
		w.done(t, code, err)
	}
	closedLoop(b.cfg.clients, b.cfg.dur/10, step)
	c0 := cpuOf(ps)
	st := closedLoop(b.cfg.clients, b.cfg.dur, step)
	cpu := cpuOf(ps) - c0
	note := "check: every environment holds what its writer committed"
	if err := b.acct.check(context.Background(), devs[0], b.envs); err != nil {
		note = "CHECK FAILED: " + err.Error()
		b.failed = true
	}
	b.rows = append(b.rows, row{phase: "mix 90% reads / 10% commits: ov-server", instances: n, clients: fmt.Sprint(b.cfg.clients), st: st, cpu: cpu, note: note})
	return st, nil
}

// overload offers factor x capacity requests per second, open loop: reads as raw requests
// (a shed read is counted, not retried), commits through internal/api (which retries with
// backoff and jitter), one writer per environment.
func (b *bench) overload(capacity float64) error {
	ps, err := b.startServers("overload", 1)
	if err != nil {
		return err
	}
	defer stopAll(ps)
	url := ps[0].url
	offered := capacity * b.cfg.factor
	hc := newHTTPClient(512) // up to 1024 connections: more than the server admits and queues
	dev, _ := api.NewClient(url, api.ClientOptions{Token: b.acct.token, Timeout: 60 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.dur)
	defer cancel()

	// Writers: one per environment, each at its share of 10% of the offered load.
	var wg sync.WaitGroup
	var cmu sync.Mutex
	var commitOK, commitShed, commitErr int
	var firstCommitErr error
	perEnv := offered * 0.1 / float64(len(b.envs))
	for i, e := range b.envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.Duration(float64(time.Second) / perEnv)
			next := time.Now().Add(time.Duration(i) * tick / time.Duration(len(b.envs)))
			for {
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				if ctx.Err() != nil {
					return
				}
				next = next.Add(tick)
				_, err := b.acct.changeOne(context.WithoutCancel(ctx), dev, e)
				cmu.Lock()
				var ae *api.Error
				switch {
				case err == nil:
					commitOK++
				case errors.As(err, &ae) && (ae.Code == api.CodeOverloaded || ae.Code == api.CodeRateLimited):
					commitShed++
				default:
					commitErr++
					if firstCommitErr == nil {
						firstCommitErr = err
					}
				}
				cmu.Unlock()
			}
		}()
	}
	c0 := cpuOf(ps)
	shed0 := ps[0].metric(context.Background(), "ov_server_shed_total")
	st := openLoop(offered*0.9, b.cfg.dur, 1024, func(ctx context.Context, w *worker) {
		e := b.envs[int(time.Now().UnixNano())%len(b.envs)]
		t := time.Now()
		code, err := httpGet(ctx, hc, url+"/v1/envs/"+hex.EncodeToString(e.envID), e.machineToken)
		w.done(t, code, err)
	})
	wg.Wait()
	cpu := cpuOf(ps) - c0
	shed := ps[0].metric(context.Background(), "ov_server_shed_total") - shed0
	note := fmt.Sprintf("offered %.0f req/s (%.0fx the mix throughput); server shed %.0f (503 + Retry-After); %d arrivals not sent (over 1024 open in the load generator); commits through internal/api: %d ok, %d given up after backoff, %d errors",
		offered, b.cfg.factor, shed, st.notSent, commitOK, commitShed, commitErr)
	if firstCommitErr != nil {
		note += fmt.Sprintf(" (first: %v)", firstCommitErr)
		b.failed = true
	}
	if err := b.acct.check(context.Background(), dev, b.envs); err != nil {
		note += "; CHECK FAILED: " + err.Error()
		b.failed = true
	} else {
		note += "; check: every environment holds exactly what its writer committed"
	}
	st.ok += int64(commitOK)
	b.rows = append(b.rows, row{phase: "overload: open loop, reads + commits", instances: 1, clients: "open", st: st, cpu: cpu, note: note})
	return nil
}

func (b *bench) report() {
	fmt.Println()
	fmt.Println("| phase | instances | clients | req/s | p50 | p99 | errors | shed | server CPU per request |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range b.rows {
		perReq := time.Duration(0)
		if r.st.ok > 0 {
			perReq = r.cpu / time.Duration(r.st.ok)
		}
		fmt.Printf("| %s | %d | %s | %.0f | %s | %s | %d | %d | %s |\n", r.phase, r.instances, r.clients, r.st.rate(),
			r.st.pct(0.5).Round(10*time.Microsecond), r.st.pct(0.99).Round(10*time.Microsecond), r.st.errs, r.st.shed, perReq.Round(time.Microsecond))
		if r.st.errs > 0 {
			b.failed = true
			fmt.Printf("\n%s: first error: %v\n", r.phase, r.st.firstErr)
		}
	}
	for _, r := range b.rows {
		if r.note != "" {
			fmt.Printf("\n%s (%d instance(s)): %s\n", r.phase, r.instances, r.note)
		}
	}
	if n := len(b.ratios); n > 0 {
		fmt.Printf("\nratio ov-server / trivial server, replay of `ov run --machine-key`, %d clients: %.2f (median of %d rounds; min %.2f, max %.2f)\n",
			b.cfg.clients, b.ratios[n/2], n, b.ratios[0], b.ratios[n-1])
	}
}
