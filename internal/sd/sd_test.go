// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

const helperEnv = "OV_SD_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

// helper runs in a child process started by a test.
func helper(which string) int {
	switch which {
	case "listeners":
		ls, err := sd.Listeners(os.Getenv("OV_FDNAME"))
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		var addrs []string
		for _, l := range ls {
			addrs = append(addrs, l.Addr().String())
			// The listener works: accept the connection the test makes.
			c, err := l.Accept()
			if err != nil {
				fmt.Println("accept:", err)
				return 1
			}
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
		fmt.Printf("listeners=%s env=%q\n", strings.Join(addrs, ","), os.Getenv("LISTEN_FDS"))
		return 0
	case "journal":
		l := sd.NewLogger(logrus.InfoLevel)
		hooked := len(l.Hooks[logrus.InfoLevel]) > 0
		fmt.Fprintf(os.Stdout, "hooked=%v\n", hooked)
		l.WithFields(logrus.Fields{"peer_uid": 1000, "app": "myapp"}).Info("hello journal")
		return 0
	}
	return 2
}

// notifySocket listens like systemd's notify socket and returns what
// arrives.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 16)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(b[:n])
		}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no notify message")
	}
	return ""
}

func TestNotify(t *testing.T) {
	ch := notifySocket(t)
	if err := sd.Ready("unlocked: myapp/production"); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ch); m != "READY=1\nSTATUS=unlocked: myapp/production" {
		t.Errorf("Ready sent %q", m)
	}
	if err := sd.Status("two\nlines"); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ch); m != "STATUS=two lines" {
		t.Errorf("Status sent %q", m)
	}
	if err := sd.Reloading(); err != nil {
		t.Fatal(err)
	}
	m := recv(t, ch)
	lines := strings.Split(m, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Errorf("Reloading sent %q", m)
	} else if v, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || v == 0 {
		t.Errorf("MONOTONIC_USEC %q", lines[1])
	}
	if err := sd.Stopping(); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ch); m != "STOPPING=1" {
		t.Errorf("Stopping sent %q", m)
	}
	if _, err := sd.Notify("READY"); err == nil {
		t.Error("Notify accepted a non-assignment")
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := sd.Notify("READY=1"); sent || err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET = %v, %v", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if err := sd.Ready(""); err == nil {
		t.Error("no error for a missing notify socket")
	}
}

func TestWatchdog(t *testing.T) {
	ch := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got := sd.WatchdogInterval(); got != 100*time.Millisecond {
		t.Fatalf("WatchdogInterval = %v, want half of 200ms", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sd.Watchdog(ctx); close(done) }()
	start := time.Now()
	for range 3 {
		if m := recv(t, ch); m != "WATCHDOG=1" {
			t.Fatalf("got %q", m)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("3 pings in %v: faster than every 100ms", el)
	}
	cancel()
	<-done

	t.Setenv("WATCHDOG_PID", "1")
	if got := sd.WatchdogInterval(); got != 0 {
		t.Errorf("watchdog for another pid: %v", got)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if got := sd.WatchdogInterval(); got != 0 {
		t.Errorf("no watchdog: %v", got)
	}
}

// activate starts the test binary as a socket-activated helper: the
// listeners as fds 3… with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID set as
// systemd does (LISTEN_PID by a shell that then execs, keeping its pid).
func activate(t *testing.T, names string, n int) (paths []string, out *bytes.Buffer, cmd *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	var files []*os.File
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		f, err := l.File()
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
		files = append(files, f)
		paths = append(paths, p)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, self, "-test.run=^$")
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), helperEnv+"=listeners", "LISTEN_FDS="+strconv.Itoa(n), "OV_FDNAME=agent")
	if names != "" {
		cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+names)
	}
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	return paths, out, cmd
}

func dialHello(t *testing.T, path string) {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 5)
	if _, err := c.Read(b); err != nil || string(b) != "hello" {
		t.Fatalf("read from activated listener: %q, %v", b, err)
	}
}

func TestListenersByName(t *testing.T) {
	paths, out, cmd := activate(t, "other:agent", 2)
	dialHello(t, paths[1])
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := fmt.Sprintf("listeners=%s env=\"\"", paths[1])
	if !strings.Contains(out.String(), want) {
		t.Errorf("helper said %q, want %q (LISTEN_* consumed)", out, want)
	}
	// The other socket was closed by the helper, not served.
	if c, err := net.Dial("unix", paths[0]); err == nil {
		c.Close()
		t.Error("the unnamed-for-us socket still accepts connections")
	}
}

func TestListenersUnnamed(t *testing.T) {
	paths, out, cmd := activate(t, "", 1)
	dialHello(t, paths[0])
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "listeners="+paths[0]) {
		t.Errorf("helper said %q", out)
	}
}

func TestListenersNotActivated(t *testing.T) {
	t.Setenv("LISTEN_PID", "")
	ls, err := sd.Listeners("agent")
	if ls != nil || err != nil {
		t.Errorf("Listeners = %v, %v", ls, err)
	}
}

func TestJournalField(t *testing.T) {
	for in, want := range map[string]string{
		"peer_uid": "OV_PEER_UID", "app": "OV_APP", "request": "OV_REQUEST", "error": "OV_ERROR", "a-b.c": "OV_A_B_C",
	} {
		if got := sd.JournalField(in); got != want {
			t.Errorf("JournalField(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoggerText(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	t.Setenv("INVOCATION_ID", "")
	l := sd.NewLogger(logrus.DebugLevel)
	var b bytes.Buffer
	l.SetOutput(&b)
	l.WithField("peer_uid", 1000).Info("hello")
	if s := b.String(); !strings.Contains(s, "time=") || !strings.Contains(s, `msg=hello peer_uid=1000`) {
		t.Errorf("text log %q", s)
	}
	t.Setenv("INVOCATION_ID", "0123")
	l = sd.NewLogger(logrus.InfoLevel)
	b.Reset()
	l.SetOutput(&b)
	l.Info("under systemd")
	if s := b.String(); strings.Contains(s, "time=") {
		t.Errorf("timestamp under systemd: %q", s)
	}
}

// When stderr is the journal stream, the logger sends native entries to
// journald. This runs a real systemd-journald in a private mount namespace
// (tmpfs over /run and /var/log/journal, so the host's are untouched), gives
// the logging helper a stderr connected to journald's stream socket with
// JOURNAL_STREAM set (as systemd does for a service), and queries the entry
// back by its OV_ fields with journalctl.
func TestLoggerJournal(t *testing.T) {
	s := testutil.InPrivateJournal(t, "TestJournalReceiver", "OV_JOURNAL_RECEIVER=1")
	for _, want := range []string{"MESSAGE=hello journal", "OV_PEER_UID=1000", "OV_APP=myapp", "PRIORITY=6", "SYSLOG_IDENTIFIER=sd.test", "_TRANSPORT=journal", "hooked=true"} {
		if !strings.Contains(s, want) {
			t.Errorf("journal entry lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "_TRANSPORT=stdout") {
		t.Errorf("the helper wrote text to its stderr stream as well:\n%s", s)
	}
}

// TestJournalReceiver runs inside TestLoggerJournal's namespace.
func TestJournalReceiver(t *testing.T) {
	if os.Getenv("OV_JOURNAL_RECEIVER") != "1" {
		t.Skip("subprocess of TestLoggerJournal")
	}
	// A stream connection as systemd makes for a service's stderr.
	c, err := net.Dial("unix", "/run/systemd/journal/stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ov-test\n\n6\n0\n0\n0\n0\n")); err != nil {
		t.Fatal(err)
	}
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=journal", fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stderr = f
	var so bytes.Buffer
	cmd.Stdout = &so
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	fmt.Print(so.String())
	var out []byte
	for range 50 {
		out, err = exec.Command("journalctl", "--no-pager", "-o", "verbose", "OV_PEER_UID=1000").CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("hello journal")) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println(string(out))
	all, _ := exec.Command("journalctl", "--no-pager", "-o", "verbose").CombinedOutput()
	if bytes.Contains(all, []byte("_TRANSPORT=stdout")) {
		fmt.Println("_TRANSPORT=stdout seen")
	}
}

func TestSystemManagerWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("skipping: systemd runs here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := sd.SystemManager(ctx); !errors.Is(err, sd.ErrNoSystemd) {
		t.Errorf("SystemManager = %v, want ErrNoSystemd", err)
	}
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, err := sd.UserManager(ctx); !errors.Is(err, sd.ErrNoSystemd) {
		t.Errorf("UserManager = %v, want ErrNoSystemd", err)
	}
}
