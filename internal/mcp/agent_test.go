// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// fakeAgent answers the local API on a unix socket from a fixed status and
// memSource, as daemon/agent would.
type fakeAgent struct {
	status *localapi.Status
	src    *memSource
	err    *localapi.Error // answered to every request when set
}

func (f *fakeAgent) answer(req *localapi.Request) *localapi.Response {
	if f.err != nil {
		return &localapi.Response{Err: f.err}
	}
	switch req.Op {
	case localapi.OpStatus:
		return &localapi.Response{Status: f.status}
	case localapi.OpList:
		names, err := f.src.List(context.Background(), req.App, req.Env)
		if err != nil {
			return &localapi.Response{Err: localapi.Errorf(localapi.CodeNotFound, "no env %s/%s", req.App, req.Env)}
		}
		return &localapi.Response{Names: names}
	case localapi.OpGet:
		var r localapi.Response
		for _, n := range req.Names {
			v, ok := f.src.data[req.App][req.Env][n]
			if !ok {
				return &localapi.Response{Err: localapi.Errorf(localapi.CodeNotFound, "no secret %q in %s/%s", n, req.App, req.Env)}
			}
			r.Secrets = append(r.Secrets, localapi.Secret{Name: n, Version: 1, Value: []byte(v)})
		}
		return &r
	}
	return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "unexpected %v", req.Op)}
}

// listen starts the fake agent and returns a client for it.
func (f *fakeAgent) listen(t *testing.T) *localapi.Client {
	t.Helper()
	sock := filepath.Join(safeDir(t), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
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
				b, err := localapi.MarshalResponse(req.Op, f.answer(req))
				if err != nil {
					return
				}
				_, _ = c.Write(b)
			}()
		}
	}()
	return localapi.NewClient(&localapi.Endpoint{Socket: sock, ListenerUIDs: []uint32{uint32(os.Getuid())}})
}

// safeDir returns a directory the client's socket checks accept: every
// directory up to / owned by root or the caller and not writable by others
// (not under /tmp). Like localapi's tests, it needs root.
func safeDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the agent client's socket checks need a directory tree owned by root")
	}
	d, err := os.MkdirTemp("/run", "ov-mcp-")
	if err != nil {
		t.Skipf("skipping: no directory under /run: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestAgentSource(t *testing.T) {
	ctx := context.Background()
	f := &fakeAgent{src: testSource(), status: &localapi.Status{State: localapi.StateUnlocked, App: "myapp", Env: "dev"}}
	src := NewAgentSource(f.listen(t))

	apps, err := src.Apps(ctx)
	if err != nil || len(apps) != 1 || apps[0].App != "myapp" || !slices.Equal(apps[0].Envs, []string{"dev"}) {
		t.Errorf("Apps of an agent for myapp/dev = %v, %v", apps, err)
	}
	f.status = &localapi.Status{State: localapi.StateUnlocked, Key: "scoped", Scopes: []localapi.Scope{{App: "a", Env: "x"}, {App: "b", Env: "y"}, {App: "a", Env: "z"}}}
	apps, _ = src.Apps(ctx)
	if len(apps) != 2 || apps[0].App != "a" || !slices.Equal(apps[0].Envs, []string{"x", "z"}) {
		t.Errorf("Apps of scoped keys = %v", apps)
	}
	f.status = &localapi.Status{State: localapi.StateUnlocked, Key: "account"}
	if _, err := src.Apps(ctx); !errors.Is(err, ErrUnsupported) || !strings.Contains(hintOf(err), "ask the user") {
		t.Errorf("Apps with an account key: %v (hint %q)", err, hintOf(err))
	}
	f.status = &localapi.Status{State: localapi.StateLocked}
	if _, err := src.Apps(ctx); !errors.Is(err, localapi.ErrLocked) || !strings.Contains(hintOf(err), "ov agent unlock") {
		t.Errorf("Apps when locked: %v (hint %q)", err, hintOf(err))
	}

	names, err := src.List(ctx, "myapp", "dev")
	if err != nil || !slices.Contains(names, "TOKEN") {
		t.Errorf("List = %v, %v", names, err)
	}
	vals, err := src.Get(ctx, "myapp", "dev", []string{"TOKEN", "PRIVATE_KEY"})
	if err != nil || string(vals["TOKEN"]) != testToken || string(vals["PRIVATE_KEY"]) != testPEM {
		t.Errorf("Get = %d values, %v", len(vals), err)
	}
	if _, err := src.Get(ctx, "myapp", "dev", []string{"NOPE"}); !errors.Is(err, localapi.ErrNotFound) || !strings.Contains(err.Error(), `"NOPE"`) {
		t.Errorf("Get of a missing name: %v", err)
	}

	f.err = localapi.Errorf(localapi.CodeLocked, "agent is locked")
	if _, err := src.List(ctx, "myapp", "dev"); !errors.Is(err, localapi.ErrLocked) || !strings.Contains(hintOf(err), "ov agent unlock") {
		t.Errorf("List when locked: %v (hint %q)", err, hintOf(err))
	}

	gone := NewAgentSource(localapi.NewClient(&localapi.Endpoint{Socket: filepath.Join(safeDir(t), "none.sock"), ListenerUIDs: []uint32{0}}))
	if _, err := gone.List(ctx, "myapp", "dev"); !errors.Is(err, localapi.ErrUnreachable) || !strings.Contains(hintOf(err), "ov agent start") {
		t.Errorf("no agent: %v (hint %q)", err, hintOf(err))
	}
}

// The path `ov mcp serve` takes: the server over the agent's client.
func TestServeOverAgent(t *testing.T) {
	f := &fakeAgent{src: testSource(), status: &localapi.Status{State: localapi.StateUnlocked, App: "myapp", Env: "dev"}}
	h := start(t, NewAgentSource(f.listen(t)), Options{DefaultApp: "myapp", DefaultEnv: "dev"})
	out := h.run(t, map[string]any{"command": []string{"sh", "-c", `printenv TOKEN; printf '%s' "$PRIVATE_KEY" | base64`}})
	if !strings.HasPrefix(out.Stdout, "[redacted:TOKEN]\n[redacted:PRIVATE_KEY]") {
		t.Errorf("stdout = %q", out.Stdout)
	}
	f.err = localapi.Errorf(localapi.CodeLocked, "agent is locked")
	res := h.call(t, "list_secrets", nil)
	if !res.IsError || !strings.Contains(text(res), "list secrets of myapp/dev: agent is locked\nhint: the agent is locked: ask the user to run `ov agent unlock`") {
		t.Errorf("locked: %q", text(res))
	}
	assertNoValues(t, "the JSON-RPC stream", h.wire.Bytes(), f.src)
}
