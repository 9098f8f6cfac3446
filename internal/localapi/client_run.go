// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package localapi

import (
	"context"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/names"
)

// Run asks for app/env's secrets in one request (RUN): exactly names, or
// every secret when names is empty. The answer carries the agent's Status;
// when Run.Served is false (locked, or pinned to another env) it holds no
// secrets. An agent that does not know RUN gives an error matching
// [ErrUnknownOp]. Values are slices of one buffer: Wipe the response.
func (c *Client) Run(ctx context.Context, app, env string, want []string) (*Response, error) {
	asked := make(map[string]bool, len(want))
	for _, n := range want {
		if asked[n] {
			return nil, fmt.Errorf("run %s/%s: %q asked twice: %w", app, env, n, ErrBadRequest)
		}
		asked[n] = true
	}
	r, err := c.Do(ctx, &Request{Op: OpRun, App: app, Env: env, Names: want})
	if err != nil {
		if isUnknownOp(err) {
			return nil, fmt.Errorf("run %s/%s through the agent: %w: %w", app, env, ErrUnknownOp, err)
		}
		return nil, err
	}
	bad := func(why string) (*Response, error) {
		r.Wipe()
		return nil, fmt.Errorf("run %s/%s: agent %s: %w", app, env, why, ErrProtocol)
	}
	if r.Run == nil || r.Status == nil {
		return bad("answered no status")
	}
	if !r.Run.Served {
		if len(r.Secrets) > 0 {
			return bad("answered secrets for a request it did not serve")
		}
		return r, nil
	}
	seen := make(map[string]bool, len(r.Secrets))
	for _, s := range r.Secrets {
		if seen[s.Name] || !names.ValidSecret(s.Name) || (len(want) > 0 && !asked[s.Name]) {
			return bad("answered other names than asked")
		}
		seen[s.Name] = true
	}
	if len(want) > 0 && len(seen) != len(want) {
		return bad("answered other names than asked")
	}
	return r, nil
}
