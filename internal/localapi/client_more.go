// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package localapi

import (
	"context"
	"fmt"
)

// Scopes returns the (app, env) pairs the agent can open: its pinned scope,
// the scopes of its keys, or, with an account key, every env of the
// account.
func (c *Client) Scopes(ctx context.Context) ([]Scope, error) {
	r, err := c.Do(ctx, &Request{Op: OpScopes})
	if err != nil {
		return nil, err
	}
	return r.Scopes, nil
}

// Info returns the names and versions of the secrets of app/env and when
// it last changed, never values.
func (c *Client) Info(ctx context.Context, app, env string) (*EnvInfo, error) {
	r, err := c.Do(ctx, &Request{Op: OpInfo, App: app, Env: env})
	if err != nil {
		return nil, err
	}
	if r.Info == nil {
		return nil, fmt.Errorf("info of %s/%s: empty answer: %w", app, env, ErrProtocol)
	}
	return r.Info, nil
}

// Generate has the agent set app/env's secret g.Name to a new value of
// g.Kind that it generates; the value never leaves the agent.
func (c *Client) Generate(ctx context.Context, app, env string, g *Generate) (*Generated, error) {
	r, err := c.Do(ctx, &Request{Op: OpGenerate, App: app, Env: env, Generate: g})
	if err != nil {
		return nil, err
	}
	if r.Generated == nil {
		return nil, fmt.Errorf("generate %s in %s/%s: empty answer: %w", g.Name, app, env, ErrProtocol)
	}
	return r.Generated, nil
}
