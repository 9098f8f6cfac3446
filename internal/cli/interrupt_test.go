// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/testutil"
)

// TestSIGINTDuringRun delivers a real SIGINT to this process while `ov run --machine-key` waits
// for a server that accepted the connection and never answers: Main's own handler must end the
// command with 130 and "interrupted", never "context canceled" or an unreachable-server error.
func TestSIGINTDuringRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never answered
		}
	}()
	dir := testutil.SafeTempDir(t)
	key := filepath.Join(dir, "m.key")
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"run", "--server", "http://" + ln.Addr().String(),
			"--app", "myapp", "--env", "production", "--machine-key", key, "--", "/bin/true"},
			Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	select {
	case c := <-accepted:
		defer c.Close()
	case code := <-done:
		t.Fatalf("ov run ended (%d) before reaching the server: %s", code, errb.String())
	case <-time.After(30 * time.Second):
		t.Fatal("ov run never connected")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != ExitInterrupted {
			t.Errorf("exit %d, want %d", code, ExitInterrupted)
		}
		if got := errb.String(); got != "ov: error: interrupted\n" {
			t.Errorf("stderr %q, want exactly the interruption", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SIGINT did not end ov run")
	}
}
