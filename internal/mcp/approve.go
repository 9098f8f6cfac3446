// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Approval is a call that injects or writes secrets, as shown to the
// person who approves it. It holds names, never values.
type Approval struct {
	Tool     string
	App, Env string
	Names    []string
	Command  []string // run_with_secrets
	Cwd      string   // run_with_secrets ("" for the server's)
	Detail   string   // set_secret_from_generator
}

// Approver confirms calls with a person, never through the model.
type Approver interface {
	// Approve returns nil when the person approved a.
	Approve(ctx context.Context, a *Approval) error
}

// ErrDeclined is matched when the person said no or did not answer.
var ErrDeclined = errors.New("declined")

// TTYApprover asks on a terminal: the controlling terminal (/dev/tty) of
// ov mcp serve, which the MCP client cannot write to through the protocol.
// One question at a time; no answer within Timeout is a no.
type TTYApprover struct {
	// Path is the terminal (default /dev/tty).
	Path string
	// Timeout bounds the wait for an answer (default 2 minutes).
	Timeout time.Duration

	mu sync.Mutex
}

func approverName(a Approver) string {
	if _, ok := a.(*TTYApprover); ok {
		return "tty"
	}
	if a == nil {
		return "none"
	}
	return fmt.Sprintf("%T", a)
}

// CheckTTY opens the terminal once, so that `--approve tty` without one
// fails at start rather than at the first call.
func (t *TTYApprover) CheckTTY() error {
	f, err := os.OpenFile(t.path(), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s for approvals: %w", t.path(), err)
	}
	return f.Close()
}

func (t *TTYApprover) path() string {
	if t.Path != "" {
		return t.Path
	}
	return "/dev/tty"
}

// Approve shows a on the terminal and reads y or n.
func (t *TTYApprover) Approve(ctx context.Context, a *Approval) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.OpenFile(t.path(), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s to ask the user: %w", t.path(), err)
	}
	defer f.Close()
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = f.SetReadDeadline(deadline) // a terminal is pollable; where it is not, the read just blocks
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprint(f, describe(a)); err != nil {
		return fmt.Errorf("write to %s: %w", t.path(), err)
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		_, _ = fmt.Fprintln(f, "\nov mcp: no answer: refused")
		return fmt.Errorf("no answer on the terminal: %w", ErrDeclined)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	_, _ = fmt.Fprintln(f, "ov mcp: refused")
	return fmt.Errorf("the user answered no: %w", ErrDeclined)
}

// describe is the question: what, where, which names, and the command line
// with each argument quoted and control characters shown as escapes, so
// that an argument cannot repaint the terminal.
func describe(a *Approval) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\r\nov mcp: the assistant asks for %s on %s/%s\r\n", safe(a.Tool), safe(a.App), safe(a.Env))
	if len(a.Names) > 0 {
		ns := make([]string, len(a.Names))
		for i, n := range a.Names {
			ns[i] = safe(n)
		}
		fmt.Fprintf(&b, "  secrets: %s\r\n", strings.Join(ns, ", "))
	}
	if len(a.Command) > 0 {
		qs := make([]string, len(a.Command))
		for i, c := range a.Command {
			qs[i] = strconv.Quote(c)
		}
		fmt.Fprintf(&b, "  command: %s\r\n", strings.Join(qs, " "))
		if a.Cwd != "" {
			fmt.Fprintf(&b, "  in:      %s\r\n", strconv.Quote(a.Cwd))
		}
	}
	if a.Detail != "" {
		fmt.Fprintf(&b, "  %s\r\n", safe(a.Detail))
	}
	b.WriteString("Allow? [y/N] ")
	return b.String()
}

func safe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
