// SPDX-License-Identifier: Apache-2.0

//go:build linux

package peercred_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/peercred"
)

const helperEnv = "OV_PEERCRED_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "dial-exit" {
		// Connect and exit at once, leaving the server a dead peer.
		c, err := net.Dial("unix", os.Getenv("OV_SOCKET"))
		if err != nil {
			os.Exit(1)
		}
		_ = c
		os.Exit(0)
	}
	if os.Getenv(helperEnv) == "dial" {
		// Connect, report what SO_PEERCRED says about the listener, and
		// wait for the server to read ours.
		c, err := net.Dial("unix", os.Getenv("OV_SOCKET"))
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		p, err := peercred.Of(c)
		fmt.Printf("listener uid=%d pid=%d err=%v\n", p.UID, p.PID, err)
		b := make([]byte, 1)
		_, _ = c.Read(b)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func listen(t *testing.T, dir string) (*net.UnixListener, string) {
	t.Helper()
	p := filepath.Join(dir, "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, p
}

// Both ends of a connection in one process: the server sees the client, the
// client sees who called listen().
func TestOfBothEnds(t *testing.T) {
	l, p := listen(t, t.TempDir())
	c, err := net.Dial("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := peercred.Peer{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), PID: int32(os.Getpid())}
	for name, conn := range map[string]net.Conn{"server end": s, "client end": c} {
		got, err := peercred.Of(conn)
		if err != nil || got != want {
			t.Errorf("%s: Of = %+v, %v; want %+v", name, got, err, want)
		}
	}
}

// A client running as another uid is seen as that uid with its pid; it
// sees the listener's uid (0, the test) and pid.
func TestOfOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to run a helper as uid 65534")
	}
	// Not t.TempDir: uid 65534 must reach the socket.
	dir, err := os.MkdirTemp("/run", "ov-peercred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, p := listen(t, dir)
	if err := os.Chmod(p, 0o777); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	bin := filepath.Join(dir, "peercred.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=dial", "OV_SOCKET=" + p}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: cannot run as uid 65534: %v", err)
	}
	_ = l.SetDeadline(time.Now().Add(10 * time.Second))
	s, err := l.Accept()
	if err != nil {
		t.Fatalf("accept: %v (%s)", err, out.String())
	}
	got, err := peercred.Of(s)
	proc, perr := peercred.ProcessOf(s)
	s.Close()
	if werr := cmd.Wait(); werr != nil {
		t.Fatalf("helper: %v\n%s", werr, out.String())
	}
	if err != nil || got.UID != 65534 || got.GID != 65534 || got.PID != int32(cmd.Process.Pid) {
		t.Errorf("Of = %+v, %v; want uid/gid 65534 pid %d", got, err, cmd.Process.Pid)
	}
	if want := fmt.Sprintf("listener uid=0 pid=%d err=<nil>", os.Getpid()); !strings.Contains(out.String(), want) {
		t.Errorf("helper saw %q, want %q", out.String(), want)
	}
	if why := peercred.ProbePeerPIDFD(); why != nil {
		t.Skipf("skipping the pidfd check: %v", why)
	}
	// Root reads another uid's /proc/PID/exe.
	if want := (peercred.Process{PID: int32(cmd.Process.Pid), Exe: bin, Comm: "peercred.test", Verified: true}); perr != nil || proc != want {
		t.Errorf("ProcessOf = %+v, %v; want %+v", proc, perr, want)
	}
}

// SO_PEERPIDFD names the peer in this process: its pid and executable,
// verified alive after reading.
func TestProcessOf(t *testing.T) {
	if why := peercred.ProbePeerPIDFD(); why != nil {
		t.Skipf("skipping: %v", why)
	}
	l, p := listen(t, t.TempDir())
	c, err := net.Dial("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := peercred.ProcessOf(s)
	self, _ := os.Executable()
	if err != nil || got.PID != int32(os.Getpid()) || got.Exe != self || !got.Verified || got.Comm == "" {
		t.Errorf("ProcessOf = %+v, %v; want pid %d exe %s, verified", got, err, os.Getpid(), self)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := peercred.ProcessOf(a); !errors.Is(err, peercred.ErrNotUnix) {
		t.Errorf("net.Pipe: %v", err)
	}
}

// A peer that has exited is never labelled with what now holds its pid:
// ProcessOf fails or says it is not verified, with no executable.
func TestProcessOfExited(t *testing.T) {
	if why := peercred.ProbePeerPIDFD(); why != nil {
		t.Skipf("skipping: %v", why)
	}
	l, p := listen(t, t.TempDir())
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=dial-exit", "OV_SOCKET=" + p}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := peercred.ProcessOf(s)
	if err == nil && (got.Verified || got.Exe != "") {
		t.Errorf("ProcessOf of an exited peer = %+v", got)
	}
	t.Logf("exited peer: %+v, %v", got, err)
}

func TestOfNotUnix(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := peercred.Of(a); !errors.Is(err, peercred.ErrNotUnix) {
		t.Errorf("net.Pipe: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := peercred.Of(c); !errors.Is(err, peercred.ErrNotUnix) {
		t.Errorf("tcp: %v", err)
	}
}

func TestContext(t *testing.T) {
	if _, ok := peercred.FromContext(context.Background()); ok {
		t.Error("empty context has a peer")
	}
	p := peercred.Peer{UID: 7, GID: 8, PID: 9}
	if got, ok := peercred.FromContext(peercred.NewContext(context.Background(), p)); !ok || got != p {
		t.Errorf("FromContext = %+v, %v", got, ok)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
