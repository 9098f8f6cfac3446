// SPDX-License-Identifier: Apache-2.0

//go:build linux

package localapi_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

func TestRunWireRoundTrip(t *testing.T) {
	for _, r := range []*localapi.Request{
		{Op: localapi.OpRun, App: "myapp", Env: "dev", Names: []string{}},
		{Op: localapi.OpRun, App: "myapp", Env: "dev", Names: []string{"A", "B_2"}},
	} {
		f, err := localapi.MarshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := localapi.ParseRequest(f[4:])
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("request: %+v %v, want %+v", got, err, r)
		}
	}
	st := &localapi.Status{State: localapi.StateUnlocked, App: "myapp", Env: "dev", Key: "machine", Mode: "user", OwnerUID: 1000, PID: 42, Version: "v"}
	for _, want := range []*localapi.Response{
		{Status: st, Run: &localapi.RunResult{Served: true}, Secrets: []localapi.Secret{{Name: "A", Version: 3, Value: []byte("x")}, {Name: "B", Version: 1, Value: []byte{}}}},
		{Status: &localapi.Status{State: localapi.StateLocked}, Run: &localapi.RunResult{}, Secrets: []localapi.Secret{}},
	} {
		f, err := localapi.MarshalResponse(localapi.OpRun, want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := localapi.ParseResponse(localapi.OpRun, f[4:])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Status, want.Status) || !reflect.DeepEqual(got.Run, want.Run) || len(got.Secrets) != len(want.Secrets) {
			t.Fatalf("response: %+v, want %+v", got, want)
		}
		for i := range want.Secrets {
			if g, w := got.Secrets[i], want.Secrets[i]; g.Name != w.Name || g.Version != w.Version || string(g.Value) != string(w.Value) {
				t.Errorf("secret %d: %v, want %v", i, g, w)
			}
		}
		// Every truncation is refused, never read past the frame.
		for n := 2; n < len(f)-4; n++ {
			if _, err := localapi.ParseResponse(localapi.OpRun, f[4:4+n]); !errors.Is(err, localapi.ErrProtocol) {
				t.Fatalf("truncated to %d bytes: %v", n, err)
			}
		}
	}
	// A forged secret count cannot make the parser allocate for it.
	f, _ := localapi.MarshalResponse(localapi.OpRun, &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}})
	p := f[4:]
	copy(p[len(p)-4:], []byte{0xff, 0xff, 0xff, 0xff})
	if _, err := localapi.ParseResponse(localapi.OpRun, p); !errors.Is(err, localapi.ErrProtocol) {
		t.Errorf("forged count: %v", err)
	}
	// A served flag other than 0 or 1 is refused.
	f, _ = localapi.MarshalResponse(localapi.OpRun, &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}})
	p = f[4:]
	p[len(p)-5] = 2
	if _, err := localapi.ParseResponse(localapi.OpRun, p); !errors.Is(err, localapi.ErrProtocol) {
		t.Errorf("served=2: %v", err)
	}
}

// lyingAgent answers every request with the frame answer makes from it.
func lyingAgent(t *testing.T, answer func(*localapi.Request) []byte) *localapi.Client {
	t.Helper()
	b := base(t)
	dir := mkdir(t, filepath.Join(b, "ov"), 0o700, os.Getuid())
	l, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
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
			p, err := localapi.ReadFrame(c)
			if err == nil {
				if req, err := localapi.ParseRequest(p); err == nil {
					_, _ = c.Write(answer(req))
				}
			}
			c.Close()
		}
	}()
	return localapi.NewClient(&localapi.Endpoint{Socket: filepath.Join(dir, "agent.sock"), ListenerUIDs: []uint32{uint32(os.Getuid())}})
}

// The client refuses an agent that lies in its RUN answer: secrets with a
// request it says it did not serve, other names than asked, a name twice
// or an invalid name; and it recognises an older agent's "unknown op".
func TestRunClientRefusesLyingAgent(t *testing.T) {
	st := &localapi.Status{State: localapi.StateUnlocked}
	sec := func(names ...string) []localapi.Secret {
		var s []localapi.Secret
		for _, n := range names {
			s = append(s, localapi.Secret{Name: n, Value: []byte("v")})
		}
		return s
	}
	frame := func(r *localapi.Response) []byte {
		f, err := localapi.MarshalResponse(localapi.OpRun, r)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, c := range []struct {
		name string
		ask  []string
		resp *localapi.Response
	}{
		{"secrets while not served", nil, &localapi.Response{Status: st, Run: &localapi.RunResult{}, Secrets: sec("A")}},
		{"a name not asked", []string{"A"}, &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}, Secrets: sec("A", "B")}},
		{"a name missing", []string{"A", "B"}, &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}, Secrets: sec("A")}},
		{"a name twice", nil, &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}, Secrets: sec("A", "A")}},
		{"an invalid name", nil, &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}, Secrets: sec("A=B")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := lyingAgent(t, func(*localapi.Request) []byte { return frame(c.resp) })
			r, err := cl.Run(context.Background(), "myapp", "dev", c.ask)
			if !errors.Is(err, localapi.ErrProtocol) {
				t.Fatalf("answer %+v: %v, want ErrProtocol", r, err)
			}
		})
	}
	// An older agent: the decode error of an op it does not know.
	old := lyingAgent(t, func(r *localapi.Request) []byte {
		f, _ := localapi.MarshalResponse(0, &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "decode request: unknown op 9: malformed agent message")})
		return f
	})
	if _, err := old.Run(context.Background(), "myapp", "dev", nil); !errors.Is(err, localapi.ErrUnknownOp) {
		t.Errorf("older agent: %v, want ErrUnknownOp", err)
	}
	// Any other bad_request is not mistaken for an older agent.
	other := lyingAgent(t, func(r *localapi.Request) []byte {
		f, _ := localapi.MarshalResponse(0, &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "invalid secret name")})
		return f
	})
	if _, err := other.Run(context.Background(), "myapp", "dev", nil); errors.Is(err, localapi.ErrUnknownOp) || !strings.Contains(err.Error(), "invalid secret name") {
		t.Errorf("bad request: %v", err)
	}
}
