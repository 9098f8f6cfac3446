// SPDX-License-Identifier: Apache-2.0

package localapi

import (
	"reflect"
	"testing"
	"time"
)

func TestMoreRoundTrip(t *testing.T) {
	for _, r := range []*Request{
		{Op: OpScopes},
		{Op: OpInfo, App: "myapp", Env: "dev"},
		{Op: OpGenerate, App: "myapp", Env: "dev", Generate: &Generate{Name: "SESSION_KEY", Kind: KindHex, Length: 32, Create: true}},
	} {
		f, err := MarshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(payload(t, f))
		if err != nil {
			t.Fatalf("%s: %v", r.Op, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: got %+v, want %+v", r.Op, got, r)
		}
	}
	if _, err := MarshalRequest(&Request{Op: OpGenerate}); err == nil {
		t.Error("GENERATE without a name was encoded")
	}
	for _, tc := range []struct {
		op Op
		r  *Response
	}{
		{OpScopes, &Response{Scopes: []Scope{{"a", "b"}, {"a", "c"}}}},
		{OpScopes, &Response{Scopes: []Scope{}}},
		{OpInfo, &Response{Info: &EnvInfo{Seq: 7, UpdatedAt: time.Unix(1700000000, 0), Secrets: []SecretInfo{{"A", 1}, {"B", 3}}}}},
		{OpInfo, &Response{Info: &EnvInfo{Secrets: []SecretInfo{}}}},
		{OpGenerate, &Response{Generated: &Generated{Version: 2}}},
		{OpGenerate, &Response{Generated: &Generated{Version: 1, Created: true}}},
		{OpGenerate, &Response{Err: Errorf(CodeDenied, "machine keys cannot write")}},
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
	// A flag byte other than 0 or 1 is refused.
	f, _ := MarshalResponse(OpGenerate, &Response{Generated: &Generated{Version: 1, Created: true}})
	f[len(f)-1] = 2
	if _, err := ParseResponse(OpGenerate, f[4:]); err == nil {
		t.Error("created flag 2 was accepted")
	}
}
