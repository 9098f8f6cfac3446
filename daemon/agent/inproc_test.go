// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/localapi"
)

// serveInProcess runs Serve in this process on a socket bound with Listen,
// unlocked with an account key, and returns a client for it.
func serveInProcess(t testing.TB, extra int, rate agent.Rate) (*localapi.Client, string) {
	t.Helper()
	needRoot(t)
	dir := safeDir(t)
	sock := filepath.Join(dir, "ov", "agent.sock")
	l, err := agent.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Serve(ctx, agent.Config{
			Listeners: []net.Listener{l}, App: "myapp", Env: "production",
			Open: testOpener(extra), Bus: agent.BusNone, Log: logrus.NewEntry(log), Rate: rate, Mode: agent.ModeUser,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(sock); err == nil {
			t.Error("the socket bound with Listen was not removed")
		}
	})
	c := localapi.NewClient(&localapi.Endpoint{Socket: sock, ListenerUIDs: []uint32{0}, System: true})
	u := &localapi.Unlock{AccountID: bytes.Repeat([]byte{1}, 16), AccountKey: bytes.Repeat([]byte{7}, 32)}
	var uerr error
	for range 100 {
		if uerr = c.Unlock(context.Background(), u); !errors.Is(uerr, localapi.ErrUnreachable) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if uerr != nil {
		t.Fatal(uerr)
	}
	return c, sock
}

// raw sends a request the client would refuse to build.
func raw(t *testing.T, sock string, req *localapi.Request) *localapi.Error {
	t.Helper()
	f, err := localapi.MarshalRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
	p, err := localapi.ReadFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := localapi.ParseResponse(req.Op, p)
	if err != nil {
		t.Fatal(err)
	}
	return r.Err
}

// GET returns exactly the names asked for, or names what is missing; it
// never means "all".
func TestGetExactNames(t *testing.T) {
	c, sock := serveInProcess(t, 0, agent.Rate{PerMinute: -1})
	ctx := context.Background()

	r, err := c.Get(ctx, "myapp", "production", []string{"STRIPE_SECRET_KEY"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Secrets) != 1 || r.Secrets[0].Name != "STRIPE_SECRET_KEY" || string(r.Secrets[0].Value) != testSecrets["STRIPE_SECRET_KEY"] {
		t.Errorf("GET one name: %v", r.Secrets)
	}
	r.Wipe()

	_, err = c.Get(ctx, "myapp", "production", []string{"DATABASE_URL", "NOPE", "ALSO_NOPE"})
	if !errors.Is(err, localapi.ErrNotFound) || err.Error() != `2 secrets not found in myapp/production: "NOPE", "ALSO_NOPE"` {
		t.Errorf("missing names: %v", err)
	}
	if e := raw(t, sock, &localapi.Request{Op: localapi.OpGet, App: "myapp", Env: "production"}); e == nil || e.Code != localapi.CodeBadRequest {
		t.Errorf("GET without names: %v", e)
	}
	if e := raw(t, sock, &localapi.Request{Op: localapi.OpGet, App: "myapp", Env: "production", Names: []string{"A", "A"}}); e == nil || e.Code != localapi.CodeBadRequest {
		t.Errorf("GET with a duplicate: %v", e)
	}
	if _, err := c.Get(ctx, "other", "production", []string{"DATABASE_URL"}); !errors.Is(err, localapi.ErrDenied) {
		t.Errorf("another app: %v", err)
	}
	if e := raw(t, sock, &localapi.Request{Op: localapi.OpList, App: "", Env: "production"}); e == nil || e.Code != localapi.CodeBadRequest {
		t.Errorf("empty app: %v", e)
	}
	names, err := c.List(ctx, "myapp", "production")
	if err != nil || !strings.Contains(strings.Join(names, ","), "DATABASE_URL") || len(names) != 3 {
		t.Errorf("LIST: %v, %v", names, err)
	}
	// Not a frame at all.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte{0xff, 0xff, 0xff, 0xff})
	p, err := localapi.ReadFrame(conn)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r, err := localapi.ParseResponse(localapi.OpStatus, p); err != nil || r.Err == nil || r.Err.Code != localapi.CodeBadRequest {
		t.Errorf("oversized frame: %+v, %v", r, err)
	}
}

func TestListen(t *testing.T) {
	needRoot(t)
	dir := safeDir(t)
	sock := filepath.Join(dir, "run", "agent.sock")
	l, err := agent.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v, %v", fi.Mode(), err)
	}
	if di, err := os.Stat(filepath.Dir(sock)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode: %v, %v", di.Mode(), err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := agent.Listen(sock); !errors.Is(err, agent.ErrRunning) {
		t.Errorf("second agent: %v, want ErrRunning", err)
	}

	// A stale socket (its agent died without removing it) is replaced.
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	l.Close()
	l2, err := agent.Listen(sock)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l2.Close()
	if _, err := os.Stat(sock); err == nil {
		t.Error("Close did not remove the socket")
	}

	// Anything else in the way is left alone.
	if err := os.WriteFile(sock, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Listen(sock); err == nil || !strings.Contains(err.Error(), "regular file is in the way") {
		t.Errorf("regular file: %v", err)
	}
	if _, err := agent.Listen("relative.sock"); err == nil {
		t.Error("relative path accepted")
	}
}

func TestServeConfigErrors(t *testing.T) {
	for name, cfg := range map[string]agent.Config{
		"no opener":    {SocketPath: "/nonexistent/x.sock"},
		"app only":     {App: "a", Open: testOpener(0)},
		"bad app name": {App: "a\xff", Env: "b", Open: testOpener(0)},
	} {
		if err := agent.Serve(context.Background(), cfg); err == nil {
			t.Errorf("%s: Serve accepted", name)
		}
	}
	t.Setenv("LISTEN_PID", "")
	if err := agent.Serve(context.Background(), agent.Config{Open: testOpener(0), Bus: agent.BusNone}); !errors.Is(err, agent.ErrNoListener) {
		t.Errorf("no listener: %v", err)
	}
}

// BenchmarkGet50 is the round trip of one GET of 50 secrets over the
// socket: connect, peer checks both ways, request, the Source read, answer.
func BenchmarkGet50(b *testing.B) {
	c, _ := serveInProcess(b, 50, agent.Rate{PerMinute: -1})
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("EXTRA_%03d", i)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		r, err := c.Get(ctx, "myapp", "production", names)
		if err != nil {
			b.Fatal(err)
		}
		r.Wipe()
	}
}
