// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newPTY returns the master side of a new pseudo-terminal and its slave's path.
func newPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// answer reads the terminal until the question, then types reply (if any).
func answer(t *testing.T, m *os.File, reply string) <-chan string {
	seen := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(b.String(), "Allow? [y/N] ") && time.Now().Before(deadline) {
			n, err := m.Read(buf)
			if err != nil { // EIO until the approver opens the terminal
				time.Sleep(10 * time.Millisecond)
				continue
			}
			b.Write(buf[:n])
		}
		if reply != "" {
			_, _ = m.WriteString(reply)
		}
		seen <- b.String()
	}()
	return seen
}

// Calls that inject or write secrets are confirmed on the terminal: yes
// runs, no (or no answer) refuses, and the question names names, never values.
func TestTTYApproval(t *testing.T) {
	m, tty := newPTY(t)
	src := testSource()
	ap := &TTYApprover{Path: tty, Timeout: 3 * time.Second}
	if err := ap.CheckTTY(); err != nil {
		t.Fatal(err)
	}
	h := start(t, src, Options{App: "myapp", Env: "dev", Approve: ap, AllowWrites: true})

	seen := answer(t, m, "y\n")
	out := h.run(t, map[string]any{"command": []string{"printenv", "TOKEN"}, "secrets": []string{"TOKEN"}})
	q := <-seen
	if out.Stdout != "[redacted:TOKEN]\n" {
		t.Errorf("approved run: %+v", out)
	}
	for _, w := range []string{"run_with_secrets on myapp/dev", "secrets: TOKEN", `command: "printenv" "TOKEN"`} {
		if !strings.Contains(q, w) {
			t.Errorf("the question %q lacks %q", q, w)
		}
	}
	if strings.Contains(q, testToken) {
		t.Error("the question shows the value")
	}

	seen = answer(t, m, "n\n")
	res := h.call(t, "run_with_secrets", map[string]any{"command": []string{"printenv", "TOKEN"}, "secrets": []string{"TOKEN"}})
	<-seen
	if !res.IsError || !strings.Contains(text(res), "not approved") || !strings.Contains(text(res), "answered no") {
		t.Errorf("refused run: %s", text(res))
	}

	seen = answer(t, m, "")
	res = h.call(t, "set_secret_from_generator", map[string]any{"name": "NEW", "kind": "hex"})
	<-seen
	if !res.IsError || !strings.Contains(text(res), "no answer") {
		t.Errorf("unanswered write: %s", text(res))
	}
	if _, ok := src.data["myapp"]["dev"]["NEW"]; ok {
		t.Error("the unapproved write happened")
	}
	// Listing is not asked about.
	if res := h.call(t, "list_secrets", map[string]any{}); res.IsError {
		t.Errorf("list_secrets: %s", text(res))
	}
	// An argument cannot repaint the terminal.
	if q := describe(&Approval{Tool: "run_with_secrets", Command: []string{"echo", "\x1b[2J\rfake"}}); strings.ContainsAny(q, "\x1b") {
		t.Errorf("control characters reach the terminal: %q", q)
	}
	if err := (&TTYApprover{Path: "/nonexistent/tty"}).Approve(context.Background(), &Approval{}); err == nil || errors.Is(err, ErrDeclined) {
		t.Errorf("no terminal: %v", err)
	}
}

// Where commands cannot be isolated, run_with_secrets refuses and says why,
// unless the user accepted the risk (--allow-unisolated-commands).
func TestNoIsolation(t *testing.T) {
	h := start(t, testSource(), Options{App: "myapp", Env: "dev", Isolation: Isolation{Helper: "/bin/false"}})
	res := h.call(t, "run_with_secrets", map[string]any{"command": []string{"printenv", "TOKEN"}, "secrets": []string{"TOKEN"}})
	if !res.IsError || !strings.Contains(text(res), "cannot be isolated") || !strings.Contains(text(res), "--allow-unisolated-commands") {
		t.Errorf("without isolation: %s", text(res))
	}
	u := start(t, testSource(), Options{App: "myapp", Env: "dev", Isolation: Isolation{Unisolated: true}})
	out := u.run(t, map[string]any{"command": []string{"printenv", "TOKEN"}, "secrets": []string{"TOKEN"}})
	if out.Stdout != "[redacted:TOKEN]\n" || !strings.Contains(strings.Join(out.Notes, "\n"), "not isolated") {
		t.Errorf("unisolated: %+v", out)
	}
}
