// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process started by the load generator: an ov-server, or the trivial server.
type proc struct {
	cmd     *exec.Cmd
	url     string // API
	metrics string // metrics URL (ov-server only)
	stderr  *strings.Builder
}

var (
	listeningRE = regexp.MustCompile(`listening on (http://\S+)`)
	metricsRE   = regexp.MustCompile(`metrics on (http://\S+)`)
)

// start runs bin with args and waits for its "listening on URL" line (on stderr or stdout).
func start(bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "INVOCATION_ID=") // plain log lines
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, stderr: &strings.Builder{}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				if m := metricsRE.FindStringSubmatch(line); m != nil {
					p.metrics = m[1]
				}
				if m := listeningRE.FindStringSubmatch(line); m != nil {
					p.url = m[1]
					sent = true
					close(ready)
					continue
				}
				p.stderr.WriteString(line + "\n")
			}
		}
		if !sent {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
	}
	if p.url == "" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s did not start listening:\n%s", filepath.Base(bin), p.stderr.String())
	}
	return p, nil
}

// stop ends the process with SIGTERM and waits for it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture Go supports.
const clockTick = 100

// cpu returns the process's user+system CPU time so far.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(ut+st) * time.Second / clockTick
}

// metric reads one unlabelled sample (or the sum of a labelled family) from the metrics listener.
func (p *proc) metric(ctx context.Context, name string) float64 {
	if p.metrics == "" {
		return 0
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", p.metrics, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// cpuInfo names the machine for the report.
func cpuInfo() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model, n := "", 0
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			switch strings.TrimSpace(k) {
			case "model name":
				model = strings.TrimSpace(v)
			case "processor":
				n++
			}
		}
	}
	return fmt.Sprintf("%s, %d logical CPUs", model, n)
}
