// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hotSecrets is the size of the environment the hot-path figures are quoted for.
const hotSecrets = 20

// helloWorld builds a Go hello-world the way realBinary builds ov: the floor of any Go program's start.
func helloWorld(b *testing.B) string {
	b.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("skip: no go command to build the hello-world: %v", err)
	}
	dir := b.TempDir()
	src := "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "hello")
	c := exec.Command(gobin, "build", "-trimpath", "-o", out, ".")
	c.Dir = dir
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := c.CombinedOutput(); err != nil {
		b.Fatalf("go build hello: %v\n%s", err, o)
	}
	return out
}

// BenchmarkHotPath is the review's hot path, measured paired: each iteration runs, one after the
// other, /usr/bin/true, a Go hello-world, `ov --version`, and `ov run` of 20 secrets with a machine
// key online (a local ov-server; the warm-up run fills the cache), offline (the cache), and through a warm unlocked agent. Each is
// reported as its median wall time in ms over /usr/bin/true (and x_true, the ratio), so that machine
// load moves every figure alike, and as the median CPU time of its process over true's (cpu_ms). OV_BENCH_COMPARE_OV=/path/to/another/ov adds that binary's three runs to the
// same loop (e.g. the ov of an older commit):
//
//	go test -run '^$' -bench HotPath -benchtime 300x ./bench/
func BenchmarkHotPath(b *testing.B) {
	w := setup(b)
	w.run(b, "secret", "import", w.writeEnv(b, "twenty.env", hotSecrets), "--app", "bench", "--env", "run", "--password-file", w.path("pw"))
	if err := os.Mkdir(w.path("keys"), 0o700); err != nil {
		b.Fatal(err)
	}
	key := w.path("keys/bench.key")
	w.run(b, "auth", "derive-machine-key", "--app", "bench", "--env", "run", "--out", key, "--password-file", w.path("pw"))
	rt := w.path("rt")
	if err := os.Mkdir(rt, 0o700); err != nil {
		b.Fatal(err)
	}
	w.env = append(w.env, "XDG_RUNTIME_DIR="+rt)
	w.run(b, "agent", "start", "--password-file", w.path("pw"), "--rate-per-minute=-1")
	testOV, env := w.ov, w.env
	b.Cleanup(func() {
		c := exec.Command(testOV, "agent", "stop")
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			b.Logf("stop the agent: %v\n%s", err, out)
		}
	})
	ov := realBinary(b)
	hello := helloWorld(b)
	type cmd struct {
		name string
		argv []string
		env  []string
	}
	runs := func(prefix, ov string) []cmd {
		machine := []string{ov, "run", "--app", "bench", "--env", "run", "--machine-key", key}
		return []cmd{
			{prefix + "version", []string{ov, "--version"}, w.env},
			{prefix + "online", append(slices.Clone(machine), "--", "/usr/bin/true"), w.env},
			{prefix + "offline", append(slices.Clone(machine), "--offline", "--", "/usr/bin/true"), w.env},
			{prefix + "agent", []string{ov, "run", "--app", "bench", "--env", "run", "--", "/usr/bin/true"}, w.env},
		}
	}
	cmds := append([]cmd{{"true", []string{"/usr/bin/true"}, nil}, {"hello", []string{hello}, nil}}, runs("", ov)...)
	if other := os.Getenv("OV_BENCH_COMPARE_OV"); other != "" {
		cmds = append(cmds, runs("cmp_", other)...)
	}
	// run returns the wall time of c and the CPU time (user and system) of its process.
	run := func(c cmd) (time.Duration, time.Duration) {
		x := exec.Command(c.argv[0], c.argv[1:]...)
		x.Env = c.env
		start := time.Now()
		out, err := x.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(c.argv, " "), err, out)
		}
		return d, x.ProcessState.UserTime() + x.ProcessState.SystemTime()
	}
	for _, c := range cmds { // warm: fills the caches, pages the binaries in
		run(c)
	}
	times := make([][]time.Duration, len(cmds))
	cpu := make([][]time.Duration, len(cmds))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, c := range cmds {
			w, u := run(c)
			times[j], cpu[j] = append(times[j], w), append(cpu[j], u)
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	base, baseCPU := median(times[0]), median(cpu[0])
	b.ReportMetric(float64(base.Microseconds()), "true_µs")
	for j, c := range cmds[1:] {
		m := median(times[j+1])
		b.ReportMetric(float64(m-base)/1e6, c.name+"_ms_over_true")
		b.ReportMetric(float64(m)/float64(base), c.name+"_x_true")
		// CPU time moves less with the machine's load than wall time (the agent's own is not in it).
		b.ReportMetric(float64(median(cpu[j+1])-baseCPU)/1e6, c.name+"_cpu_ms_over_true")
	}
}
