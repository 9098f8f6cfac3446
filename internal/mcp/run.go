// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opaquevault/opaquevault/internal/childenv"
	"github.com/opaquevault/opaquevault/internal/mcp/sandbox"
)

// Limits of run_command.
const (
	// DefaultTimeout is the timeout of a command when the model gives none.
	DefaultTimeout = 60 * time.Second
	// MaxTimeout is the longest timeout the model may ask for.
	MaxTimeout = 600 * time.Second
	// DefaultMaxOutput bounds what is kept of each of stdout and stderr.
	DefaultMaxOutput = 1 << 20
	// killGrace is how long a timed-out process group has between SIGTERM
	// and SIGKILL.
	killGrace = 2 * time.Second
)

// capture keeps the first limit bytes written to it and counts the rest.
type capture struct {
	limit int
	buf   []byte
	total int64
}

func (c *capture) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	if room := c.limit - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capture) wipe() { clear(c.buf[:cap(c.buf)]) }

// execSpec is a command to run, already checked.
type execSpec struct {
	path    string   // resolved program
	argv    []string // argv[0] as the model gave it
	env     []string
	dir     string
	stdin   string
	timeout time.Duration
	grace   time.Duration
	keep    int // bytes of each stream to keep (plus the redactor's margin)
	iso     Isolation
}

// execResult is what happened; the outputs are unredacted and must be wiped.
type execResult struct {
	exitCode       int
	signal         string
	timedOut       bool
	cancelled      bool
	duration       time.Duration
	stdout, stderr *capture
}

// runProcess runs s in its own process group, with a timeout after which the
// group gets SIGTERM, then SIGKILL after the grace period. When the command
// ends, whatever is left of its group is killed: nothing that holds the
// secrets outlives the call. An error means the program did not start.
func runProcess(ctx context.Context, s *execSpec) (*execResult, error) {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res := &execResult{stdout: &capture{limit: s.keep}, stderr: &capture{limit: s.keep}}
	var cmd *exec.Cmd
	if s.iso.Unisolated {
		cmd = exec.CommandContext(tctx, s.path, s.argv[1:]...)
		cmd.Args[0] = s.argv[0]
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	} else {
		cmd = sandbox.Command(tctx, s.iso.Helper, s.iso.Hide, s.path, s.argv)
	}
	cmd.Env = s.env
	cmd.Dir = s.dir
	if s.stdin != "" {
		cmd.Stdin = strings.NewReader(s.stdin)
	} // else /dev/null: never the server's stdin, which is the protocol
	cmd.Stdout, cmd.Stderr = res.stdout, res.stderr
	var killed atomic.Bool
	cmd.Cancel = func() error {
		killed.Store(true)
		return killGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = s.grace // then SIGKILL to the leader and the pipes closed
	var statusR *os.File
	if !s.iso.Unisolated {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("start %q: %w", s.argv[0], err)
		}
		defer r.Close()
		defer w.Close()
		cmd.ExtraFiles = []*os.File{w}
		statusR = r
	}
	start := time.Now()
	if err := startDumpable(cmd.Start); err != nil {
		return nil, fmt.Errorf("start %q: %w", s.argv[0], startErr(err))
	}
	if statusR != nil {
		cmd.ExtraFiles[0].Close() // the helper holds the only write end
	}
	err := cmd.Wait()
	_ = killGroup(cmd.Process.Pid, syscall.SIGKILL)
	res.duration = time.Since(start)
	res.cancelled = killed.Load() && ctx.Err() != nil
	res.timedOut = killed.Load() && !res.cancelled
	res.exitCode = -1
	if ps := cmd.ProcessState; ps != nil {
		res.exitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.signal = signalName(ws.Signal())
		}
	}
	if statusR != nil {
		// How the command itself ended, as the sandbox's init saw it.
		b, _ := io.ReadAll(io.LimitReader(statusR, 256))
		code, sig, serr, ok := sandbox.ReadStatus(b)
		switch {
		case ok && serr != "":
			return nil, fmt.Errorf("start %q: %s", s.argv[0], serr)
		case ok:
			res.exitCode, res.signal = code, ""
			if sig != 0 {
				res.signal = signalName(sig)
			}
		case res.signal == "":
			// The sandbox failed before the command started: its reason is all there is on stderr.
			return nil, fmt.Errorf("run %q in the sandbox: %s", s.argv[0], strings.TrimSpace(string(res.stderr.buf)))
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && !errors.Is(err, exec.ErrWaitDelay) && res.exitCode < 0 && res.signal == "" {
		return res, fmt.Errorf("wait for %q: %w", s.argv[0], err)
	}
	return res, nil
}

// killGroup signals the process group led by pid; a group that is gone is
// not an error.
func killGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// startErr drops the *exec.Error and *fs.PathError wrappers, which repeat
// the path.
func startErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	}
	return s.String()
}

// resolveProgram finds argv0 as execvp would (internal/childenv, as `ov run` does): a name without
// a slash in PATH (the server's, never one from the secrets), a relative path from dir (the
// command's working directory, "" for the server's).
func resolveProgram(argv0 string, dir string) (string, error) {
	return childenv.ResolveProgram(argv0, dir)
}
