// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
	"github.com/opaquevault/opaquevault/internal/testutil"
)

// The agent, with the real key source of `ov agent start` (an account key, a real ov-server), keeps
// what it verified of the env in its memo and answers RUN from it; LOCK wipes the memo with the key,
// and the next RUN gets nothing.
func TestAgentLockWipesVerifiedValues(t *testing.T) {
	UseTestKDF()
	ctx := context.Background()
	dir := testutil.SafeTempDir(t)
	db, err := sqlitestore.Open(ctx, filepath.Join(dir, "ov.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lim := server.DefaultLimits()
	lim.KeyRate, lim.IPRate, lim.LoginRate = server.Rate{}, server.Rate{}, server.Rate{}
	srv, err := server.New(ctx, server.Config{Store: db, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	for k, v := range map[string]string{"HOME": dir, "OV_SERVER": hs.URL, "XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_STATE_HOME": filepath.Join(dir, "state"), "XDG_CACHE_HOME": filepath.Join(dir, "cache"), "XDG_RUNTIME_DIR": ""} {
		t.Setenv(k, v)
	}
	pw, envFile := filepath.Join(dir, "pw"), filepath.Join(dir, "app.env")
	if err := os.WriteFile(pw, []byte("correct horse battery staple"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envFile, []byte("TOKEN=memo-token-value\nOTHER=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"auth", "register", "--email", "op@example.com", "--password-file", pw},
		{"secret", "import", envFile, "--app", "myapp", "--env", "dev", "--password-file", pw},
	} {
		var errb bytes.Buffer
		if code := Main(ctx, args, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb}); code != 0 {
			t.Fatalf("ov %s: %d\n%s", strings.Join(args, " "), code, errb.String())
		}
	}

	log := logrus.New()
	log.SetOutput(io.Discard)
	a := &App{io: Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}, env: os.Getenv, goos: goosName(), log: log}
	open := a.agentOpener(logrus.NewEntry(log), 0)
	var mu sync.Mutex
	var sources []*vaultSource
	rec := func(ctx context.Context, k *agent.Key) (agent.Source, error) {
		s, err := open(ctx, k)
		if vs, ok := s.(*vaultSource); ok {
			mu.Lock()
			sources = append(sources, vs)
			mu.Unlock()
		}
		return s, err
	}
	sock := filepath.Join(dir, "rt", "ov", "agent.sock")
	l, err := agent.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- agent.Serve(sctx, agent.Config{Listeners: []net.Listener{l}, Open: rec, Bus: agent.BusNone,
			Log: logrus.NewEntry(log), Rate: agent.Rate{PerMinute: -1}, Mode: agent.ModeUser})
	}()
	t.Cleanup(func() { cancel(); <-done })
	c := localapi.NewClient(&localapi.Endpoint{Socket: sock, ListenerUIDs: []uint32{uint32(os.Getuid())}})
	for i := 0; ; i++ {
		if _, err := c.Status(ctx); err == nil {
			break
		} else if i == 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.unlockAgent(ctx, c, unlockFlags{passwordFile: pw}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(sources) != 1 {
		t.Fatalf("%d sources opened", len(sources))
	}
	memo := sources[0].v.Memo
	mu.Unlock()

	for range 2 {
		r, err := c.Run(ctx, "myapp", "dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := r.Lookup("TOKEN"); !r.Run.Served || !ok || string(v.Value) != "memo-token-value" {
			t.Fatalf("RUN: served=%t %v", r.Run.Served, r.Secrets)
		}
		r.Wipe()
	}
	if memo.Len() != 1 {
		t.Fatalf("the memo holds %d envs after two RUNs, want 1", memo.Len())
	}
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if memo.Len() != 0 {
		t.Fatalf("the memo holds %d envs after LOCK", memo.Len())
	}
	r, err := c.Run(ctx, "myapp", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.Served || len(r.Secrets) != 0 || r.Status.State != localapi.StateLocked {
		t.Fatalf("RUN after LOCK: served=%t %d secrets, state %s", r.Run.Served, len(r.Secrets), r.Status.State)
	}
}
