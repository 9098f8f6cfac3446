// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/internal/localapi"
)

// SCOPES, INFO and GENERATE of an agent pinned to myapp/production whose
// source can read but not write.
func TestScopesInfoGenerate(t *testing.T) {
	c, _ := serveInProcess(t, 2, agent.Rate{PerMinute: -1})
	ctx := context.Background()
	sc, err := c.Scopes(ctx)
	if err != nil || len(sc) != 1 || sc[0] != (localapi.Scope{App: "myapp", Env: "production"}) {
		t.Fatalf("Scopes = %v, %v", sc, err)
	}
	in, err := c.Info(ctx, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]uint64{}
	for _, s := range in.Secrets {
		names[s.Name] = s.Version
	}
	if len(names) != len(in.Secrets) || names["EXTRA_001"] != 1 || names["KEY_FINGERPRINT"] != 1 {
		t.Errorf("Info = %+v", in)
	}
	if _, err := c.Info(ctx, "other", "production"); !errors.Is(err, localapi.ErrDenied) {
		t.Errorf("Info out of scope: %v", err)
	}
	_, err = c.Generate(ctx, "myapp", "production", &localapi.Generate{Name: "NEW", Kind: localapi.KindHex, Length: 32})
	if !errors.Is(err, localapi.ErrDenied) || !strings.Contains(err.Error(), "cannot write") {
		t.Errorf("Generate with a read-only source: %v", err)
	}
	for _, g := range []localapi.Generate{
		{Name: "X", Kind: "rot13", Length: 32},
		{Name: "X", Kind: localapi.KindHex, Length: 4},
		{Name: "X", Kind: localapi.KindAlphanumeric, Length: 100000},
		{Name: "X", Kind: localapi.KindUUID, Length: 12},
		{Name: "", Kind: localapi.KindHex, Length: 32},
	} {
		if _, err := c.Generate(ctx, "myapp", "production", &g); !errors.Is(err, localapi.ErrBadRequest) {
			t.Errorf("Generate(%+v) = %v, want a bad request", g, err)
		}
	}
}
