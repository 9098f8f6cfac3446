// SPDX-License-Identifier: Apache-2.0

package localapi

import (
	"errors"
	"fmt"
)

// Code is an error code on the wire.
type Code string

// The error codes of the protocol.
const (
	CodeLocked      Code = "locked"       // the agent holds no key: `ov agent unlock`
	CodeDenied      Code = "denied"       // the peer may not do this (uid, scope, polkit)
	CodeNotFound    Code = "not_found"    // no such app, env or secret
	CodeBadRequest  Code = "bad_request"  // malformed or invalid request
	CodeRateLimited Code = "rate_limited" // too many requests from this uid
	CodeInternal    Code = "internal"     // anything else
	// CodeServerDown: the agent could not reach ov-server and had no usable cached copy.
	CodeServerDown Code = "server_unreachable"
)

// Sentinel errors: an [*Error] from the agent matches the one of its code
// with errors.Is (an unknown code matches ErrInternal).
var (
	ErrLocked      = errors.New("agent is locked")
	ErrDenied      = errors.New("denied by the agent")
	ErrNotFound    = errors.New("not found")
	ErrBadRequest  = errors.New("bad request")
	ErrRateLimited = errors.New("rate limited by the agent")
	ErrInternal    = errors.New("agent failed")

	// ErrUnreachable: no agent listens at the socket (missing, refused,
	// timed out). The CLI maps it to exit code 10.
	ErrUnreachable = errors.New("agent unreachable")
	// ErrUntrusted: the rendezvous file, the socket's directory or the
	// listener's uid failed a check: something may be impersonating the
	// agent. The CLI maps it to exit code 4.
	ErrUntrusted = errors.New("agent socket not trusted")
	// ErrServerDown: the agent could not reach ov-server (and had nothing usable cached).
	ErrServerDown = errors.New("the agent cannot reach ov-server")
	// ErrProtocol: the agent's answer is malformed.
	ErrProtocol = errors.New("malformed agent message")
)

var codeErrs = map[Code]error{
	CodeLocked:      ErrLocked,
	CodeDenied:      ErrDenied,
	CodeNotFound:    ErrNotFound,
	CodeBadRequest:  ErrBadRequest,
	CodeRateLimited: ErrRateLimited,
	CodeInternal:    ErrInternal,
	CodeServerDown:  ErrServerDown,
}

// Error is an error answered by the agent. Message is written by the agent
// for people (lowercase, no values); Code is for programs.
type Error struct {
	Code    Code
	Message string
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "agent: " + string(e.Code)
	}
	return e.Message
}

// Is matches the sentinel of e's code (ErrInternal for unknown codes).
func (e *Error) Is(target error) bool {
	s, ok := codeErrs[e.Code]
	if !ok {
		s = ErrInternal
	}
	return target == s
}

// CodeOf returns the wire code for err: the code of an *Error in its chain,
// else the code of the first sentinel it matches, else [CodeInternal].
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		if _, ok := codeErrs[e.Code]; ok {
			return e.Code
		}
		return CodeInternal
	}
	for _, c := range []Code{CodeLocked, CodeDenied, CodeNotFound, CodeBadRequest, CodeRateLimited, CodeServerDown} {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	return CodeInternal
}
