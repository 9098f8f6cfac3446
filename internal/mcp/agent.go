// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// agentSource is a [Source] backed by the local agent.
type agentSource struct {
	c *localapi.Client // nil: discover the agent on each call
}

// NewAgentSource returns a [Source] that asks the agent through c. With a
// nil c, each call finds the agent with [localapi.Discover] first, so that
// the server can start (and explain what is wrong) before the agent runs.
//
// Errors wrap the localapi sentinels ([localapi.ErrLocked],
// [localapi.ErrUnreachable], [localapi.ErrNotFound]…) with a hint for the
// model. Apps asks for the agent's status: an agent started for one app/env,
// or unlocked for some scopes, lists those; one holding an account key cannot
// list apps and Apps returns an error matching [ErrUnsupported].
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

func (a *agentSource) Apps(ctx context.Context) ([]AppEnvs, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, agentErr(fmt.Errorf("ask agent for status: %w", err))
	}
	if st.State != localapi.StateUnlocked {
		return nil, agentErr(fmt.Errorf("list apps: %w", localapi.ErrLocked))
	}
	if st.App != "" {
		return []AppEnvs{{App: st.App, Envs: []string{st.Env}}}, nil
	}
	if len(st.Scopes) == 0 {
		return nil, withHint(fmt.Errorf("list apps: the agent holds an account key, which opens any app: %w", ErrUnsupported),
			"ask the user which app and env to use, and pass them as app and env")
	}
	var out []AppEnvs
	for _, s := range st.Scopes {
		i := slices.IndexFunc(out, func(a AppEnvs) bool { return a.App == s.App })
		if i < 0 {
			out = append(out, AppEnvs{App: s.App})
			i = len(out) - 1
		}
		out[i].Envs = append(out[i].Envs, s.Env)
	}
	return out, nil
}

func (a *agentSource) List(ctx context.Context, app, env string) ([]string, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	names, err := c.List(ctx, app, env)
	if err != nil {
		return nil, agentErr(fmt.Errorf("list secrets of %s/%s: %w", app, env, err))
	}
	return names, nil
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

// agentErr adds what the model should do about an agent error.
func agentErr(err error) error {
	switch {
	case errors.Is(err, localapi.ErrLocked):
		return withHint(err, "the agent is locked: ask the user to run `ov agent unlock`")
	case errors.Is(err, localapi.ErrUnreachable):
		return withHint(err, "no agent is running: ask the user to start it (`ov agent start`, or `sudo systemctl start ov-agent.socket` after `ov agent install`)")
	case errors.Is(err, localapi.ErrUntrusted):
		return withHint(err, "the agent's socket failed a safety check: tell the user; do not try to work around it")
	case errors.Is(err, localapi.ErrDenied):
		return withHint(err, "the agent refused this request: tell the user")
	case errors.Is(err, localapi.ErrNotFound):
		return withHint(err, "check the names with list_apps and list_secrets")
	}
	return err
}
