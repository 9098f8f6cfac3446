// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/cli"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
	"github.com/opaquevault/opaquevault/internal/testutil"
	"github.com/opaquevault/opaquevault/internal/vault"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ov": func() {
			vault.UseTestKDF()
			cli.UseTestKDF()
			os.Exit(cli.Main(context.Background(), os.Args[1:], cli.OSStdio()))
		},
	})
}

type world struct {
	dir, ov string
	env     []string
}

func setup(b *testing.B) *world {
	b.Helper()
	dir := testutil.SafeTempDir(b)
	db, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "ov.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	lim := server.DefaultLimits()
	lim.KeyRate, lim.IPRate, lim.LoginRate = server.Rate{}, server.Rate{}, server.Rate{}
	srv, err := server.New(context.Background(), server.Config{Store: db, Limits: lim})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	exe, _ := os.Executable()
	w := &world{dir: dir, ov: filepath.Join(dir, "ov")}
	if err := os.Symlink(exe, w.ov); err != nil {
		b.Fatal(err)
	}
	w.env = []string{"HOME=" + dir, "PATH=" + dir + ":/usr/bin:/bin", "OV_SERVER=" + hs.URL,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_STATE_HOME=" + filepath.Join(dir, "state"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}
	if err := os.WriteFile(w.path("pw"), []byte("correct horse battery staple"), 0o600); err != nil {
		b.Fatal(err)
	}
	w.run(b, "auth", "register", "--email", "bench@example.com", "--password-file", w.path("pw"))
	return w
}

func (w *world) path(n string) string { return filepath.Join(w.dir, n) }

func (w *world) run(b *testing.B, args ...string) {
	b.Helper()
	c := exec.Command(w.ov, args...)
	c.Env = w.env
	if out, err := c.CombinedOutput(); err != nil {
		b.Fatalf("ov %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (w *world) writeEnv(b *testing.B, name string, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "SECRET_%04d=\"value-%04d with $ and # and spaces\"\n", i, i)
	}
	p := w.path(name)
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

var (
	baselineOnce sync.Once
	baseline     time.Duration
)

// baselineCost is the mean time of `/usr/bin/env true` in this run.
func baselineCost(b *testing.B) time.Duration {
	baselineOnce.Do(func() {
		const n = 200
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := exec.Command("/usr/bin/env", "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
		baseline = time.Since(start) / n
	})
	return baseline
}

func report(b *testing.B, elapsed time.Duration) {
	per := elapsed / time.Duration(b.N)
	base := baselineCost(b)
	b.ReportMetric(float64(per)/float64(base), "x_env_true")
	b.ReportMetric(float64(base.Microseconds()), "env_true_µs")
}

func BenchmarkBaselineEnvTrue(b *testing.B) {
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := exec.Command("/usr/bin/env", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	report(b, time.Since(start))
}

func BenchmarkImport1000(b *testing.B) {
	w := setup(b)
	file := w.writeEnv(b, "big.env", 1000)
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		w.run(b, "secret", "import", file, "--app", "bench", "--env", fmt.Sprintf("e%d", i), "--password-file", w.path("pw"))
	}
	report(b, time.Since(start))
}

func BenchmarkList1000(b *testing.B) {
	w := setup(b)
	w.run(b, "secret", "import", w.writeEnv(b, "big.env", 1000), "--app", "bench", "--env", "list", "--password-file", w.path("pw"))
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		w.run(b, "secret", "list", "--app", "bench", "--env", "list", "--password-file", w.path("pw"))
	}
	report(b, time.Since(start))
}

func BenchmarkRun50(b *testing.B) {
	w := setup(b)
	w.run(b, "secret", "import", w.writeEnv(b, "fifty.env", 50), "--app", "bench", "--env", "run", "--password-file", w.path("pw"))
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		w.run(b, "run", "--app", "bench", "--env", "run", "--password-file", w.path("pw"), "--", "/usr/bin/true")
	}
	report(b, time.Since(start))
}

// realBinary builds the production ov (no test hooks): machine keys need no KDF, so these benchmarks
// measure exactly what a service pays at start. The build cache makes repeated builds cheap.
func realBinary(b *testing.B) string {
	b.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("skip: no go command to build ov: %v", err)
	}
	ov := filepath.Join(b.TempDir(), "ov")
	// As `make build` and the packages build it: static, no cgo (a cgo build loads ld.so and libc at
	// every start). GOFLAGS=-buildmode=pie in the environment measures the packages' PIE build.
	build := exec.Command(gobin, "build", "-trimpath", "-o", ov, "github.com/opaquevault/opaquevault/cmd/ov")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return ov
}

func machineWorld(b *testing.B) (*world, string) {
	w := setup(b)
	w.run(b, "secret", "import", w.writeEnv(b, "fifty.env", 50), "--app", "bench", "--env", "run", "--password-file", w.path("pw"))
	if err := os.Mkdir(w.path("keys"), 0o700); err != nil {
		b.Fatal(err)
	}
	key := w.path("keys/bench.key")
	w.run(b, "auth", "derive-machine-key", "--app", "bench", "--env", "run", "--out", key, "--password-file", w.path("pw"))
	w.ov = realBinary(b)
	w.run(b, "run", "--app", "bench", "--env", "run", "--machine-key", key, "--", "/usr/bin/true") // fills the cache
	return w, key
}

func BenchmarkRunMachineKey(b *testing.B) {
	w, key := machineWorld(b)
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		w.run(b, "run", "--app", "bench", "--env", "run", "--machine-key", key, "--", "/usr/bin/true")
	}
	report(b, time.Since(start))
}

func BenchmarkRunMachineKeyOffline(b *testing.B) {
	w, key := machineWorld(b)
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		w.run(b, "run", "--app", "bench", "--env", "run", "--machine-key", key, "--offline", "--", "/usr/bin/true")
	}
	elapsed := time.Since(start)
	report(b, elapsed)
	b.ReportMetric(float64((elapsed/time.Duration(b.N))-baselineCost(b))/1e6, "ms_over_env_true")
}

// BenchmarkRunAgent is `ov run` served by a warm, unlocked user agent (no password, no key file).
func BenchmarkRunAgent(b *testing.B) {
	w := setup(b)
	w.run(b, "secret", "import", w.writeEnv(b, "fifty.env", 50), "--app", "bench", "--env", "run", "--password-file", w.path("pw"))
	rt := w.path("rt")
	if err := os.Mkdir(rt, 0o700); err != nil {
		b.Fatal(err)
	}
	w.env = append(w.env, "XDG_RUNTIME_DIR="+rt)
	w.run(b, "agent", "start", "--password-file", w.path("pw"), "--rate-per-minute=-1")
	ov, env := w.ov, w.env // w.ov changes below; the real binary's directory is gone by cleanup time
	b.Cleanup(func() {
		c := exec.Command(ov, "agent", "stop")
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			b.Logf("stop the agent: %v\n%s", err, out)
		}
	})
	real := realBinary(b)
	w.ov = real
	w.run(b, "run", "--app", "bench", "--env", "run", "--", "/usr/bin/true") // warm
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		// Keep under the agent's per-uid rate limit (30 a minute, burst 10; a run is LIST + GET).
		w.run(b, "run", "--app", "bench", "--env", "run", "--secrets", "SECRET_0000,SECRET_0001", "--", "/usr/bin/true")
	}
	elapsed := time.Since(start)
	report(b, elapsed)
	b.ReportMetric(float64((elapsed/time.Duration(b.N))-baselineCost(b))/1e6, "ms_over_env_true")
}

// BenchmarkAgentColdStart is the time from the first connection to the answer when the agent is
// socket-activated: systemd-socket-activate holds the socket and starts `ov agent serve` on the first
// connection, as ov-agent.socket does.
func BenchmarkAgentColdStart(b *testing.B) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		b.Skip("skip: systemd-socket-activate is missing (apt-get install systemd)")
	}
	ov := realBinary(b)
	dir := testutil.SafeTempDir(b)
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sock := filepath.Join(dir, fmt.Sprintf("agent-%d.sock", i))
		cmd := exec.Command(activate, "-l", sock, "--fdname=agent", ov, "agent", "serve", "--user-mode")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for j := 0; ; j++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if j > 500 {
				b.Fatal("systemd-socket-activate did not bind")
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StartTimer()
		start := time.Now()
		ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Socket: sock})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := localapi.NewClient(ep).Status(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms_first_answer")
}

// BenchmarkOVVersion is ov's own start-up (`ov --version`), the floor under every ov command.
func BenchmarkOVVersion(b *testing.B) {
	ov := realBinary(b)
	baselineCost(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := exec.Command(ov, "--version").Run(); err != nil {
			b.Fatal(err)
		}
	}
	report(b, time.Since(start))
}
