// SPDX-License-Identifier: Apache-2.0

package localapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func payload(t testing.TB, f []byte) []byte {
	t.Helper()
	if len(f) < 4 || int(binary.BigEndian.Uint32(f)) != len(f)-4 {
		t.Fatalf("bad frame header in % x", f[:min(len(f), 8)])
	}
	return f[4:]
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []*Request{
		{Op: OpStatus},
		{Op: OpLock},
		{Op: OpList, App: "myapp", Env: "production"},
		{Op: OpGet, App: "myapp", Env: "production", Names: []string{"DATABASE_URL", "STRIPE_SECRET_KEY"}},
		{Op: OpUnlock, Unlock: &Unlock{AccountID: bytes.Repeat([]byte{1}, 16), AKVersion: 3, AccountKey: bytes.Repeat([]byte{0xAA}, 32)}},
		{Op: OpUnlock, Unlock: &Unlock{EnvKeys: []EnvKey{{App: "a", Env: "b", Key: bytes.Repeat([]byte{2}, 32)}, {App: "c", Env: "d", Key: bytes.Repeat([]byte{3}, 32)}}}},
	} {
		t.Run(r.Op.String(), func(t *testing.T) {
			f, err := MarshalRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseRequest(payload(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if r.Op == OpGet && !reflect.DeepEqual(got.Names, r.Names) || got.Op != r.Op || got.App != r.App || got.Env != r.Env {
				t.Errorf("got %+v, want %+v", got, r)
			}
			if r.Unlock != nil {
				if !bytes.Equal(got.Unlock.AccountKey, r.Unlock.AccountKey) || got.Unlock.AKVersion != r.Unlock.AKVersion ||
					len(got.Unlock.EnvKeys) != len(r.Unlock.EnvKeys) {
					t.Error("unlock fields differ")
				}
				for i := range r.Unlock.EnvKeys {
					if !bytes.Equal(got.Unlock.EnvKeys[i].Key, r.Unlock.EnvKeys[i].Key) || got.Unlock.EnvKeys[i].App != r.Unlock.EnvKeys[i].App {
						t.Error("env key differs")
					}
				}
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	since := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		op Op
		r  *Response
	}{
		{OpStatus, &Response{Status: &Status{State: StateUnlocked, App: "myapp", Env: "production", Key: "machine", Fingerprint: "0011", Mode: "system", OwnerUID: 1000, PID: 42, Since: since, Version: "v1"}}},
		{OpStatus, &Response{Status: &Status{State: StateUnlocked, Key: "scoped", Scopes: []Scope{{"a", "b"}, {"c", "d"}}}}},
		{OpList, &Response{Names: []string{"A", "B"}}},
		{OpList, &Response{Names: []string{}}},
		{OpGet, &Response{Secrets: []Secret{{Name: "A", Version: 2, Value: []byte("x\x00y")}, {Name: "B", Version: 1, Value: []byte{}}}}},
		{OpLock, &Response{}},
		{OpUnlock, &Response{}},
		{OpGet, &Response{Err: Errorf(CodeNotFound, "1 secret not found in a/b: %q", "X")}},
	} {
		f, err := MarshalResponse(tc.op, tc.r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseResponse(tc.op, payload(t, f))
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		got.frame = nil
		if !reflect.DeepEqual(got, tc.r) {
			t.Errorf("%s: got %+v, want %+v", tc.op, got, tc.r)
		}
	}
}

// Values come back as slices of the frame, and Wipe clears them.
func TestResponseWipe(t *testing.T) {
	f, _ := MarshalResponse(OpGet, &Response{Secrets: []Secret{{Name: "A", Value: []byte("hunter2")}}})
	p := payload(t, f)
	r, err := ParseResponse(OpGet, p)
	if err != nil {
		t.Fatal(err)
	}
	r.Wipe()
	if bytes.Contains(p, []byte("hunter2")) {
		t.Error("Wipe left the value in the frame")
	}
	if s := fmt.Sprintf("%v %+v", r.Secrets[0], Unlock{AccountKey: []byte("hunter2")}); strings.Contains(s, "hunter2") {
		t.Errorf("formatting shows a value: %s", s)
	}
}

func TestParseRejects(t *testing.T) {
	get, _ := MarshalRequest(&Request{Op: OpGet, App: "a", Env: "b", Names: []string{"N"}})
	gp := payload(t, get)
	huge := append([]byte{Version, byte(OpGet), 0, 1, 'a', 0, 1, 'b'}, 0xff, 0xff, 0xff, 0xff)
	for name, p := range map[string][]byte{
		"empty":         {},
		"version 2":     {2, byte(OpStatus)},
		"unknown op":    {Version, 99},
		"trailing":      append(append([]byte{}, gp...), 0),
		"truncated":     gp[:len(gp)-1],
		"forged count":  huge,
		"short string":  {Version, byte(OpList), 0, 9, 'a'},
		"bad key len":   {Version, byte(OpUnlock), 0xff, 0xff, 0xff, 0xff},
		"status + junk": {Version, byte(OpStatus), 0},
	} {
		if _, err := ParseRequest(p); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: ParseRequest = %v, want ErrProtocol", name, err)
		}
	}
	for name, p := range map[string][]byte{
		"bad result": {Version, 7},
		"short get":  {Version, 0, 0, 0, 0, 1},
		"trailing":   {Version, 0, 0},
	} {
		op := OpGet
		if name == "trailing" {
			op = OpLock
		}
		if _, err := ParseResponse(op, p); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: ParseResponse = %v, want ErrProtocol", name, err)
		}
	}
}

func TestReadFrame(t *testing.T) {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
	if p, err := ReadFrame(&b); err != nil || string(p) != "abc" {
		t.Errorf("ReadFrame = %q, %v", p, err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0x10, 0, 1})); !errors.Is(err, ErrProtocol) {
		t.Errorf("over 1 MiB: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0})); !errors.Is(err, ErrProtocol) {
		t.Errorf("empty frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5, 1})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Errorf("nothing: %v", err)
	}
	big := &Response{Secrets: []Secret{{Name: "A", Value: make([]byte, MaxFrame)}}}
	if _, err := MarshalResponse(OpGet, big); err == nil {
		t.Error("a frame over 1 MiB was encoded")
	}
	if _, err := MarshalRequest(&Request{Op: OpGet, Names: []string{strings.Repeat("x", 70000)}}); err == nil {
		t.Error("a 70000-byte name was encoded")
	}
}

func TestErrors(t *testing.T) {
	for code, s := range codeErrs {
		e := Errorf(code, "msg")
		if !errors.Is(e, s) || CodeOf(e) != code || CodeOf(fmt.Errorf("wrapped: %w", s)) != code {
			t.Errorf("%s does not map to %v", code, s)
		}
	}
	if e := (&Error{Code: "teapot"}); !errors.Is(e, ErrInternal) || CodeOf(e) != CodeInternal {
		t.Error("unknown code is not internal")
	}
	if CodeOf(errors.New("x")) != CodeInternal {
		t.Error("plain error is not internal")
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, r := range []*Request{
		{Op: OpStatus}, {Op: OpList, App: "a", Env: "b"},
		{Op: OpGet, App: "a", Env: "b", Names: []string{"X", "Y"}},
		{Op: OpUnlock, Unlock: &Unlock{AccountID: []byte{1, 2}, AccountKey: make([]byte, 32), EnvKeys: []EnvKey{{App: "a", Env: "b", Key: make([]byte, 32)}}}},
	} {
		fr, _ := MarshalRequest(r)
		f.Add(fr[4:])
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseRequest(p)
		if err != nil {
			return
		}
		fr, err := MarshalRequest(r)
		if err != nil {
			t.Fatalf("parsed but cannot marshal: %v", err)
		}
		if !bytes.Equal(fr[4:], p) {
			t.Fatalf("parse→marshal changed the message:\n% x\n% x", p, fr[4:])
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for op, r := range map[Op]*Response{
		OpStatus: {Status: &Status{State: "locked", Scopes: []Scope{{"a", "b"}}}},
		OpList:   {Names: []string{"A"}},
		OpGet:    {Secrets: []Secret{{Name: "A", Version: 1, Value: []byte("v")}}},
		OpLock:   {Err: Errorf(CodeDenied, "no")},
	} {
		fr, _ := MarshalResponse(op, r)
		f.Add(uint8(op), fr[4:])
	}
	f.Fuzz(func(t *testing.T, op uint8, p []byte) {
		if op < uint8(OpStatus) || op > uint8(OpGenerate) {
			return
		}
		r, err := ParseResponse(Op(op), p)
		if err != nil {
			return
		}
		fr, err := MarshalResponse(Op(op), r)
		if err != nil {
			t.Fatalf("parsed but cannot marshal: %v", err)
		}
		if !bytes.Equal(fr[4:], p) {
			t.Fatalf("parse→marshal changed the message:\n% x\n% x", p, fr[4:])
		}
	})
}
