// SPDX-License-Identifier: Apache-2.0

package localapi

import (
	"errors"
	"strings"
)

// RUN answers, in one round trip, everything `ov run` needs: the agent's
// status, whether it served the request, and the secrets. It is served
// (Served true) when the agent is unlocked and serves the (app, env); the
// Status then says which key it used. When the agent is locked, or pinned to
// another (app, env), it answers Served false with its Status and no secrets,
// as STATUS would: not a denial, so it counts for no lockout. Everything
// else (not found, server unreachable, a scoped key for other envs) is an
// error, as for GET.

// RunResult is the part of a RUN answer that is not Status or Secrets.
type RunResult struct {
	Served bool
}

// ErrUnknownOp means the agent does not know the request's op: an older
// agent. The caller falls back to the requests that agent knows.
var ErrUnknownOp = errors.New("the agent does not know this request")

// isUnknownOp reports whether err is an older agent's answer to an op it
// cannot decode ("decode request: unknown op N").
func isUnknownOp(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeBadRequest && strings.Contains(e.Message, "unknown op")
}
