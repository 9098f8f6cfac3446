// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/api"
)

// Exit codes (README and ov(1)); unknown codes mean failure.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitLocked      = 3 // locked, not logged in, wrong password
	ExitDenied      = 4 // permissions, peer credentials, polkit
	ExitNotFound    = 5
	ExitUnreachable = 10
	ExitRejected    = 11 // the server rejected the credentials
	ExitInterrupted = 130

	// Before `ov run` has replaced itself with the program, it fails as env(1) does.
	ExitRunFailed   = 125
	ExitRunNotExec  = 126
	ExitRunNotFound = 127
)

// Sentinels that decide exit codes.
var (
	ErrNotLoggedIn = errors.New("not logged in")
	ErrLocked      = errors.New("locked")
	ErrDenied      = errors.New("denied")
	ErrNotFound    = errors.New("not found")
)

// codedError carries an exit code and hints.
type codedError struct {
	code  int
	err   error
	hints []string
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode attaches an exit code and hints to err.
func withCode(code int, err error, hints ...string) error {
	return &codedError{code: code, err: err, hints: hints}
}

// withHints attaches hints to err, keeping the exit code that exitCode would choose.
func withHints(err error, hints ...string) error {
	return &codedError{code: -1, err: err, hints: hints}
}

func usageErr(msg string, hints ...string) error {
	return &codedError{code: ExitUsage, err: errors.New(msg), hints: hints}
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ce *codedError
	for e := err; errors.As(e, &ce); e = ce.err {
		if ce.code >= 0 {
			return ce.code
		}
	}
	var ue *api.UnreachableError
	switch {
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue), errors.Is(err, api.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, api.ErrUnauthorized):
		return ExitRejected
	case errors.Is(err, ErrNotLoggedIn), errors.Is(err, ErrLocked), isWrongPassword(err):
		return ExitLocked
	case errors.Is(err, ErrDenied), errors.Is(err, api.ErrForbidden), isPermission(err):
		return ExitDenied
	case errors.Is(err, ErrNotFound), errors.Is(err, api.ErrNotFound):
		return ExitNotFound
	}
	return ExitFailure
}

func hintsOf(err error) []string {
	var hs []string
	var ce *codedError
	for e := err; errors.As(e, &ce); e = ce.err {
		hs = append(hs, ce.hints...)
	}
	if len(hs) > 0 {
		return hs
	}
	var ue *api.UnreachableError
	switch {
	case errors.As(err, &ue):
		hs = append(hs, "is ov-server running? check the URL with `ov auth status`, or pass --server")
	case errors.Is(err, api.ErrUnauthorized):
		hs = append(hs, "this device's API key was rejected (revoked?); run `ov auth login` to enrol this device again")
	case errors.Is(err, ErrNotLoggedIn):
		hs = append(hs, "run `ov auth register --server URL --email E` or `ov auth login --server URL --email E`")
	case isWrongPassword(err):
		hs = append(hs, "nothing was changed; try again")
	case serverPolicyHint(err) != "":
		hs = append(hs, serverPolicyHint(err))
	}
	return hs
}

type jsonError struct {
	Error jsonErrorBody `json:"error"`
}

type jsonErrorBody struct {
	Code    int      `json:"code"`
	Message string   `json:"message"`
	Hints   []string `json:"hints,omitempty"`
}

// finish turns an error into text on stderr and an exit code: the one place that does.
func (a *App) finish(err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return ExitOK
	}
	code := exitCode(err)
	if errors.Is(err, context.Canceled) && (code == ExitInterrupted || a.intr.Load()) {
		// A signal cancelled the command: say so (exit 130), not "context canceled" from wherever
		// it stopped, nor the code of a request that the cancellation cut short.
		code, err = ExitInterrupted, errors.New("interrupted")
	}
	if a.cmd != nil && a.cmd.path == "run" && code == ExitFailure {
		code = ExitRunFailed
	}
	hs := hintsOf(err)
	if a.g.JSON {
		_ = json.NewEncoder(a.io.Err).Encode(jsonError{Error: jsonErrorBody{Code: code, Message: err.Error(), Hints: hs}})
		return code
	}
	fmt.Fprintf(a.io.Err, "ov: error: %v\n", err)
	for _, h := range hs {
		fmt.Fprintf(a.io.Err, "ov: hint: %s\n", h)
	}
	return code
}
