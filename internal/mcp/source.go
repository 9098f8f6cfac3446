// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"context"
	"errors"
	"strings"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// Source is where the server gets secrets from: the agent in production
// ([NewAgentSource]), a fixed map in some tests. Errors must not contain
// values; the server passes them through a sanitizer anyway.
type Source interface {
	// Scopes lists the (app, env) pairs the source can open.
	Scopes(ctx context.Context) ([]localapi.Scope, error)
	// Info returns the names and versions of app/env's secrets, never values.
	Info(ctx context.Context, app, env string) (*localapi.EnvInfo, error)
	// Get returns the values of exactly names in app/env, or an error naming
	// the missing ones. The caller owns the returned slices and wipes them.
	Get(ctx context.Context, app, env string, names []string) (map[string][]byte, error)
	// Generate sets app/env's secret g.Name to a value the source makes up
	// and never returns.
	Generate(ctx context.Context, app, env string, g *localapi.Generate) (*localapi.Generated, error)
}

// hinted is an error with advice for the model on what to do about it.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// withHint attaches a hint to err; the tool error shows it on its own line.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

// hintOf returns the hints attached to err, outermost first, one a line.
func hintOf(err error) string {
	var hints []string
	for ; err != nil; err = errors.Unwrap(err) {
		if h, ok := err.(*hinted); ok {
			hints = append(hints, h.hint)
		}
	}
	return strings.Join(hints, "\nhint: ")
}

// wipeValues zeroes the values returned by [Source.Get].
func wipeValues(m map[string][]byte) {
	for _, v := range m {
		clear(v)
	}
}
