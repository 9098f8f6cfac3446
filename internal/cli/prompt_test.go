// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (%v): the prompt test is skipped", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	go func() { // drain what the prompt prints
		b := make([]byte, 256)
		for {
			if _, err := m.Read(b); err != nil {
				return
			}
		}
	}()
	return m, s
}

// TestAskNoEcho types at a real terminal: a password, Ctrl-D and an empty line. Ctrl-D and an
// empty line must give up with exit code 3 (locked), not wait for ever or exit 1.
func TestAskNoEcho(t *testing.T) {
	for _, tc := range []struct {
		name, typed, want string
		code              int
	}{
		{"password", "pa ss\n", "pa ss", 0},
		{"ctrl-d", "\x04", "", ExitLocked},
		{"empty", "\n", "", ExitLocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, tty := openPTY(t)
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := askNoEcho(tty, "Master password", "master password")
				done <- result{b, err}
			}()
			time.Sleep(50 * time.Millisecond) // let the prompt set echo off before typing
			if _, err := master.Write([]byte(tc.typed)); err != nil {
				t.Fatal(err)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(20 * time.Second): // a hang guard, not a timing assertion
				t.Fatalf("the prompt still waits after %q", tc.typed)
			}
			if tc.code == 0 {
				if r.err != nil || string(r.b) != tc.want {
					t.Fatalf("got %q, %v; want %q", r.b, r.err, tc.want)
				}
				return
			}
			var ce *codedError
			if !errors.As(r.err, &ce) || ce.code != tc.code {
				t.Fatalf("got %v, want exit code %d", r.err, tc.code)
			}
		})
	}
}
