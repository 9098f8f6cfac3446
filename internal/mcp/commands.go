// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/opaquevault/opaquevault/internal/mcp/sandbox"
)

// Isolation says how run_with_secrets keeps commands away from ov's
// secrets.
type Isolation struct {
	// Hide are the paths a command must not see ([sandbox.Paths]).
	Hide []string
	// Helper is the binary that serves as the sandbox helper: one that
	// calls [sandbox.HelperMain] when started with [sandbox.HelperArg]
	// ("": this binary).
	Helper string
	// Unisolated runs commands without the sandbox: they can then read
	// every secret from the agent themselves. Only with the user's explicit
	// consent (`ov mcp serve --allow-unisolated-commands`).
	Unisolated bool
}

func (i Isolation) mode() string {
	if i.Unisolated {
		return "none (--allow-unisolated-commands)"
	}
	return "namespaces"
}

// isolation checks once that commands can be isolated here: it runs
// `true` in the sandbox. Without isolation (and without the user's
// consent) no command runs.
func (s *server) isolation() error {
	if s.opts.Isolation.Unisolated {
		return nil
	}
	s.isoOnce.Do(func() {
		t, err := exec.LookPath("true")
		if err != nil {
			t = "/bin/true"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := sandbox.Command(ctx, s.opts.Isolation.Helper, s.opts.Isolation.Hide, t, []string{"true"})
		if cmd == nil {
			s.isoErr = sandbox.ErrUnavailable
			return
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = startDumpable(cmd.Start)
		if err == nil {
			err = cmd.Wait()
		}
		if err != nil {
			why := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "ov: error: "))
			if why == "" {
				why = startErr(err).Error()
			}
			s.isoErr = fmt.Errorf("%w: %s", sandbox.ErrUnavailable, why)
			s.log.WithField("error", s.isoErr.Error()).Warn("commands cannot be isolated: run_with_secrets is disabled")
		}
	})
	if s.isoErr != nil {
		return withHint(fmt.Errorf("run command: %w", s.isoErr),
			"tell the user: run_with_secrets needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0); "+
				"they may instead accept the risk with `ov mcp serve --allow-unisolated-commands`")
	}
	return nil
}

// shells are the programs that run other programs from text: refused
// unless an --allow-command pattern allows them.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "busybox", "env", "xargs",
	"python", "python3", "perl", "ruby", "node", "php", "lua", "tclsh", "awk", "gawk", "mawk", "sudo", "su", "doas", "nohup", "setsid", "timeout", "nice", "systemd-run"}

// allowed checks argv against the --allow-command patterns, or, without
// any, refuses shells and interpreters.
func (s *server) allowed(argv []string) error {
	line := strings.Join(argv, " ")
	if len(s.opts.AllowCommands) > 0 {
		for _, p := range s.opts.AllowCommands {
			if globMatch(p, line) {
				return nil
			}
		}
		return withHint(fmt.Errorf("run %q: not an allowed command", line),
			"the allowed command lines are "+strings.Join(quoteAll(s.opts.AllowCommands), ", ")+" (* matches anything); ask the user to allow more with --allow-command")
	}
	base := filepath.Base(argv[0])
	for _, sh := range shells {
		if base == sh || strings.HasPrefix(base, sh) && isVersion(base[len(sh):]) {
			return withHint(fmt.Errorf("run %q: %s runs other programs from text, and is not allowed unless the user allows it", line, base),
				"run the program directly, or ask the user to start the server with --allow-command (for example --allow-command 'sh -c *')")
		}
	}
	return nil
}

// isVersion reports whether s is a version suffix such as "3.11" or "-5.1".
func isVersion(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// globMatch matches s against pattern, where * matches any text (slashes
// and spaces included) and ? any one byte; everything else is literal.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// ErrNoIsolation is matched by the error of a run_with_secrets call on a
// machine where commands cannot be isolated.
var ErrNoIsolation = sandbox.ErrUnavailable
