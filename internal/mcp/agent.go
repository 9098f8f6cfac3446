// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// agentSource reads through the local agent.
type agentSource struct{ c *localapi.Client }

// NewAgentSource returns a Source backed by the agent at c; with c nil, the
// agent is found at each call ([localapi.Discover]), so that an agent
// started after the server is found. It works with an account-key agent
// (every env of the account) and with a scoped or machine-key agent (its
// scopes only).
func NewAgentSource(c *localapi.Client) Source { return &agentSource{c: c} }

func (a *agentSource) client() (*localapi.Client, error) {
	if a.c != nil {
		return a.c, nil
	}
	ep, err := localapi.Discover()
	if err != nil {
		return nil, agentErr(err)
	}
	return localapi.NewClient(ep), nil
}

func (a *agentSource) Scopes(ctx context.Context) ([]localapi.Scope, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	sc, err := c.Scopes(ctx)
	if err != nil {
		return nil, agentErr(fmt.Errorf("list apps: %w", err))
	}
	return sc, nil
}

func (a *agentSource) Info(ctx context.Context, app, env string) (*localapi.EnvInfo, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	in, err := c.Info(ctx, app, env)
	if err != nil {
		return nil, agentErr(fmt.Errorf("list secrets of %s/%s: %w", app, env, err))
	}
	return in, nil
}

func (a *agentSource) Get(ctx context.Context, app, env string, names []string) (map[string][]byte, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	r, err := c.Get(ctx, app, env, names)
	if err != nil {
		return nil, agentErr(fmt.Errorf("get secrets of %s/%s: %w", app, env, err))
	}
	defer r.Wipe()
	out := make(map[string][]byte, len(r.Secrets))
	for _, s := range r.Secrets {
		out[s.Name] = append([]byte(nil), s.Value...)
	}
	return out, nil
}

func (a *agentSource) Generate(ctx context.Context, app, env string, g *localapi.Generate) (*localapi.Generated, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	r, err := c.Generate(ctx, app, env, g)
	if err != nil {
		return nil, agentErr(fmt.Errorf("set %s in %s/%s: %w", g.Name, app, env, err))
	}
	return r, nil
}

// agentErr adds what the model should do about an agent error.
func agentErr(err error) error {
	switch {
	case errors.Is(err, localapi.ErrLocked):
		return withHint(err, "the agent is locked: ask the user to run `ov agent unlock`")
	case errors.Is(err, localapi.ErrUnreachable):
		return withHint(err, "no agent is running: ask the user to start it (`ov agent start`, or `sudo systemctl start ov-agent.socket` after `ov agent install`)")
	case errors.Is(err, localapi.ErrUntrusted):
		return withHint(err, "the agent's socket failed a safety check: tell the user; do not try to work around it")
	case errors.Is(err, localapi.ErrServerDown):
		return withHint(err, "the agent cannot reach ov-server: tell the user")
	case errors.Is(err, localapi.ErrRateLimited):
		return withHint(err, "wait a minute before the next call")
	case errors.Is(err, localapi.ErrDenied):
		return withHint(err, "the agent refused this request: tell the user")
	case errors.Is(err, localapi.ErrNotFound):
		return withHint(err, "check the names with list_apps, list_envs and list_secrets")
	}
	return err
}
