// SPDX-License-Identifier: Apache-2.0

//go:build linux

package localapi_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

const (
	helperEnv = "OV_LOCALAPI_TEST_HELPER"
	nobody    = 65534
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "fake-agent" {
		os.Exit(fakeAgent())
	}
	os.Exit(m.Run())
}

// fakeAgent runs as uid 65534 with a socket bound by root on fd 3 in a
// root-owned directory: it calls listen() (so SO_PEERCRED names it, not
// root), answers like an agent, and tries to use it through the root-owned
// rendezvous — as a same-uid attacker's client would be fooled into doing.
func fakeAgent() int {
	if err := unix.Listen(3, 8); err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	l, err := net.FileListener(os.NewFile(3, "fake"))
	if err != nil {
		fmt.Println("listener:", err)
		return 1
	}
	go serveStatus(l, "FAKE")
	ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Rendezvous: os.Getenv("OV_RENDEZVOUS")})
	if err != nil {
		fmt.Println("discover:", err)
		return 1
	}
	_, err = localapi.NewClient(ep).Status(context.Background())
	fmt.Printf("same-uid client: untrusted=%v err=%v\n", errors.Is(err, localapi.ErrUntrusted), err)
	return 0
}

// serveStatus answers every connection with a STATUS whose app is app.
func serveStatus(l net.Listener, app string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			p, err := localapi.ReadFrame(c)
			if err != nil {
				return
			}
			req, err := localapi.ParseRequest(p)
			if err != nil {
				return
			}
			f, _ := localapi.MarshalResponse(req.Op, &localapi.Response{Status: &localapi.Status{State: "unlocked", App: app}})
			_, _ = c.Write(f)
		}()
	}
}

// base is a root-owned 0755 directory under /run with root-owned
// ancestors, like /etc and /run.
func base(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the rendezvous checks need files owned by root and by another uid")
	}
	d, err := os.MkdirTemp("/run", "ov-localapi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func mkdir(t *testing.T, p string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, p, data string, mode os.FileMode, uid int) string {
	t.Helper()
	os.Remove(p)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	return p
}

// systemAgent listens like systemd would for ov-agent.socket (root calls
// listen()) and answers STATUS.
func systemAgent(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go serveStatus(l, "REAL")
}

func rendezvous(sock string) string {
	return string(localapi.FormatRendezvous(&localapi.Endpoint{Socket: sock, ListenerUIDs: []uint32{0}}))
}

func TestParseRendezvous(t *testing.T) {
	// One line, as written now; one key per line, as earlier versions wrote it.
	const oneLine = "version=1 socket=/run/ov/agent.sock listener_uids=0\n"
	for _, s := range []string{oneLine, "version=1\nsocket=/run/ov/agent.sock\nlistener_uids=0\n", "# c\n  version=1\tsocket=/run/ov/agent.sock \nlistener_uids=0"} {
		ep, err := localapi.ParseRendezvous([]byte(s))
		if err != nil || ep.Socket != "/run/ov/agent.sock" || len(ep.ListenerUIDs) != 1 || ep.ListenerUIDs[0] != 0 || !ep.System {
			t.Fatalf("ParseRendezvous(%q) = %+v, %v", s, ep, err)
		}
		if got := string(localapi.FormatRendezvous(ep)); got != oneLine {
			t.Errorf("FormatRendezvous = %q, want %q", got, oneLine)
		}
	}
	for name, s := range map[string]string{
		"no version":        "socket=/a\nlistener_uids=0\n",
		"version 2":         "version=2\nsocket=/a\nlistener_uids=0\n",
		"relative socket":   "version=1\nsocket=a.sock\nlistener_uids=0\n",
		"unclean socket":    "version=1\nsocket=/a/../b\nlistener_uids=0\n",
		"no uids":           "version=1\nsocket=/a\n",
		"bad uid":           "version=1\nsocket=/a\nlistener_uids=root\n",
		"duplicate key":     "version=1\nsocket=/a\nsocket=/b\nlistener_uids=0\n",
		"unknown key":       "version=1\nsocket=/a\nlistener_uids=0\nextra=1\n",
		"not key=value":     "version=1\nsocket /a\nlistener_uids=0\n",
		"negative uid":      "version=1\nsocket=/a\nlistener_uids=-1\n",
		"uid out of range":  "version=1\nsocket=/a\nlistener_uids=4294967296\n",
		"empty uid in list": "version=1\nsocket=/a\nlistener_uids=0,\n",
		"one line, dup key": "version=1 socket=/a socket=/a listener_uids=0\n",
		"one line, junk":    "version=1 socket=/a listener_uids=0 x\n",
		"blank in uids":     "version=1 socket=/a listener_uids=0, 1\n",
	} {
		if _, err := localapi.ParseRendezvous([]byte(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The system agent through a good rendezvous file answers; every way of
// tampering with the file, its directory or the socket's directory is
// refused with ErrUntrusted before anything is sent.
func TestRendezvousChecks(t *testing.T) {
	b := base(t)
	etc := mkdir(t, filepath.Join(b, "etc-ov"), 0o755, 0)
	run := mkdir(t, filepath.Join(b, "run-ov"), 0o755, 0)
	sock := filepath.Join(run, "agent.sock")
	systemAgent(t, sock)
	rv := writeFile(t, filepath.Join(etc, "agent.socket"), rendezvous(sock), 0o644, 0)

	status := func(t *testing.T, rvPath string) (*localapi.Status, error) {
		t.Helper()
		ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Rendezvous: rvPath, RuntimeDir: "/nonexistent"})
		if err != nil {
			return nil, err
		}
		if !ep.System || !strings.Contains(ep.Guarantee(), "root-owned") {
			t.Errorf("endpoint %+v: guarantee %q", ep, ep.Guarantee())
		}
		return localapi.NewClient(ep).Status(context.Background())
	}
	if st, err := status(t, rv); err != nil || st.App != "REAL" {
		t.Fatalf("good rendezvous: %+v, %v", st, err)
	}

	bad := func(name string, setup func() string, undo func()) {
		t.Run(name, func(t *testing.T) {
			p := setup()
			if undo != nil {
				defer undo()
			}
			st, err := status(t, p)
			if !errors.Is(err, localapi.ErrUntrusted) {
				t.Fatalf("got %+v, %v; want ErrUntrusted", st, err)
			}
			t.Logf("refused: %v", err)
		})
	}
	bad("group-writable file", func() string { return writeFile(t, filepath.Join(etc, "gw"), rendezvous(sock), 0o664, 0) }, nil)
	bad("world-writable file", func() string { return writeFile(t, filepath.Join(etc, "ww"), rendezvous(sock), 0o646, 0) }, nil)
	bad("file owned by another uid", func() string { return writeFile(t, filepath.Join(etc, "nb"), rendezvous(sock), 0o644, nobody) }, nil)
	bad("symlink", func() string {
		p := filepath.Join(etc, "link")
		if err := os.Symlink(rv, p); err != nil {
			t.Fatal(err)
		}
		return p
	}, nil)
	bad("hard link", func() string {
		p := filepath.Join(etc, "hard")
		if err := os.Link(rv, p); err != nil {
			t.Fatal(err)
		}
		return p
	}, func() { os.Remove(filepath.Join(etc, "hard")) })
	bad("directory owned by another uid", func() string {
		d := mkdir(t, filepath.Join(b, "etc-nobody"), 0o755, nobody)
		return writeFile(t, filepath.Join(d, "agent.socket"), rendezvous(sock), 0o644, 0)
	}, nil)
	bad("group-writable directory", func() string {
		d := mkdir(t, filepath.Join(b, "etc-gw"), 0o775, 0)
		return writeFile(t, filepath.Join(d, "agent.socket"), rendezvous(sock), 0o644, 0)
	}, nil)
	bad("socket in a directory of another uid", func() string {
		d := mkdir(t, filepath.Join(b, "run-nobody"), 0o755, nobody)
		systemAgent(t, filepath.Join(d, "agent.sock"))
		return writeFile(t, filepath.Join(etc, "r1"), rendezvous(filepath.Join(d, "agent.sock")), 0o644, 0)
	}, nil)
	bad("socket in a world-writable root directory", func() string {
		d := mkdir(t, filepath.Join(b, "run-ww"), 0o1777, 0)
		systemAgent(t, filepath.Join(d, "agent.sock"))
		return writeFile(t, filepath.Join(etc, "r2"), rendezvous(filepath.Join(d, "agent.sock")), 0o644, 0)
	}, nil)
	bad("socket under a symlinked directory", func() string {
		p := filepath.Join(b, "run-link")
		if err := os.Symlink(run, p); err != nil {
			t.Fatal(err)
		}
		return writeFile(t, filepath.Join(etc, "r3"), rendezvous(filepath.Join(p, "agent.sock")), 0o644, 0)
	}, nil)

	t.Run("no agent listening", func(t *testing.T) {
		p := writeFile(t, filepath.Join(etc, "r4"), rendezvous(filepath.Join(run, "none.sock")), 0o644, 0)
		if _, err := status(t, p); !errors.Is(err, localapi.ErrUnreachable) {
			t.Fatalf("got %v, want ErrUnreachable", err)
		}
	})
}

// A fake agent running as uid 65534 (the attacker's uid) listening on the
// rendezvous path is refused: by a client of the same uid and by root,
// because SO_PEERCRED shows who called listen().
func TestFakeAgentRefused(t *testing.T) {
	b := base(t)
	etc := mkdir(t, filepath.Join(b, "etc-ov"), 0o755, 0)
	run := mkdir(t, filepath.Join(b, "run-ov"), 0o755, 0)
	sock := filepath.Join(run, "agent.sock")
	rv := writeFile(t, filepath.Join(etc, "agent.socket"), rendezvous(sock), 0o644, 0)

	// Root binds (the attacker could not create a socket in run-ov), the
	// fake agent listens.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "sock")
	defer f.Close()

	self, _ := os.Executable()
	bin := filepath.Join(b, "localapi.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=fake-agent", "OV_RENDEZVOUS=" + rv}
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: cannot run as uid %d: %v", nobody, err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	// Root's client, once the fake listens.
	var rootErr error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Rendezvous: rv})
		if err != nil {
			t.Fatal(err)
		}
		_, rootErr = localapi.NewClient(ep).Status(context.Background())
		if !errors.Is(rootErr, localapi.ErrUnreachable) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(rootErr, localapi.ErrUntrusted) || !strings.Contains(rootErr.Error(), "uid 65534") {
		t.Errorf("root's client: %v; want ErrUntrusted naming uid 65534", rootErr)
	}
	_ = cmd.Wait()
	if !strings.Contains(out.String(), "same-uid client: untrusted=true") {
		t.Errorf("the fake agent's own-uid client was not refused:\n%s", out.String())
	}
}

// The user agent under $XDG_RUNTIME_DIR: a 0700 directory of the caller's is
// accepted (and flagged as weaker); a more open one is refused.
func TestUserEndpoint(t *testing.T) {
	b := base(t)
	rt := mkdir(t, filepath.Join(b, "xdg"), 0o700, os.Getuid())
	ov := mkdir(t, filepath.Join(rt, "ov"), 0o700, os.Getuid())
	l, err := net.Listen("unix", filepath.Join(ov, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serveStatus(l, "USER")
	ep, err := localapi.DiscoverWith(localapi.DiscoverOptions{Rendezvous: filepath.Join(b, "none"), RuntimeDir: rt})
	if err != nil {
		t.Fatal(err)
	}
	if ep.System || !strings.Contains(ep.Guarantee(), "could replace") {
		t.Errorf("user endpoint %+v says %q", ep, ep.Guarantee())
	}
	if st, err := localapi.NewClient(ep).Status(context.Background()); err != nil || st.App != "USER" {
		t.Fatalf("user agent: %+v, %v", st, err)
	}
	if err := os.Chmod(ov, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := localapi.NewClient(ep).Status(context.Background()); !errors.Is(err, localapi.ErrUntrusted) {
		t.Errorf("0755 socket directory: %v, want ErrUntrusted", err)
	}

	// No rendezvous and no runtime directory: unreachable.
	t.Setenv("XDG_RUNTIME_DIR", "")
	if _, err := localapi.DiscoverWith(localapi.DiscoverOptions{Rendezvous: filepath.Join(b, "none")}); !errors.Is(err, localapi.ErrUnreachable) {
		t.Errorf("nothing to find: %v", err)
	}
	if _, err := localapi.ReadRendezvous(filepath.Join(b, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing rendezvous: %v", err)
	}
}

// Get refuses to ask for nothing or twice for a name, before connecting.
func TestClientGetArgs(t *testing.T) {
	c := localapi.NewClient(&localapi.Endpoint{Socket: "/nonexistent/agent.sock"})
	if _, err := c.Get(context.Background(), "a", "b", nil); !errors.Is(err, localapi.ErrBadRequest) {
		t.Errorf("no names: %v", err)
	}
	if _, err := c.Get(context.Background(), "a", "b", []string{"X", "X"}); !errors.Is(err, localapi.ErrBadRequest) {
		t.Errorf("duplicate: %v", err)
	}
}
