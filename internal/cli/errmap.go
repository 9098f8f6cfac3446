// SPDX-License-Identifier: Apache-2.0

package cli

// The mapping of errors to exit codes and hints, for every command: the API's, the agent's, the
// machine read path's and the files'. Commands return errors; Main turns them into codes (exit.go).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/vault"
)

func isWrongPassword(err error) bool { return errors.Is(err, vault.ErrWrongPassword) }

// isPermission reports file-permission refusals: they are "denied" (exit 4).
func isPermission(err error) bool {
	for _, s := range []error{credentials.ErrBadMode, credentials.ErrSymlink, credentials.ErrHardLinked,
		credentials.ErrWrongOwner, credentials.ErrUnsafeDir, credentials.ErrNotRegular, fs.ErrPermission} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// isAPICode reports whether err is the server's answer with this code.
func isAPICode(err error, code string) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == code
}

// quotaHints are what to do at each per-account quota, by the ov-server flag its message names.
var quotaHints = []struct{ flag, hint string }{
	{"--quota-apps", "delete apps you no longer use, or ask the server's operator to raise --quota-apps"},
	{"--quota-envs", "ask the server's operator to raise --quota-envs"},
	{"--quota-secrets", "delete secrets you no longer need (`ov secret delete`), or ask the server's operator to raise --quota-secrets"},
	{"--quota-bytes", "delete secrets you no longer need (`ov secret delete`), or ask the server's operator to raise --quota-bytes"},
	{"--quota-machines", "revoke machine keys you no longer use (`ov auth machine-key list`, `ov auth machine-key revoke ID`), or ask the server's operator to raise --quota-machines"},
	{"--quota-devices", "revoke devices you no longer use (`ov auth devices`, `ov auth devices revoke ID`), or ask the server's operator to raise --quota-devices"},
}

// serverPolicyHint is the hint for the server's registration, quota and overload answers; "" for
// any other error.
func serverPolicyHint(err error) string {
	var e *api.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Code {
	case api.CodeQuotaExceeded:
		for _, q := range quotaHints {
			if strings.Contains(e.Message, q.flag) {
				return "nothing was changed; " + q.hint
			}
		}
		return "nothing was changed; the server's operator sets this limit"
	case api.CodeRegistrationClosed:
		return "this server takes no new accounts: ask its operator for one, or log in to an existing account with `ov auth login`"
	case api.CodeInviteRequired:
		return "this server registers new accounts only with an invite code: ask its operator for one (`ov-server invite create` on the server), save it in a 0600 file and pass --invite-file FILE"
	case api.CodeInviteInvalid:
		return "each invite code works once and may expire: ask the server's operator for a new one (`ov-server invite create`)"
	case api.CodeOverloaded:
		return "the server is overloaded and refused the request before doing anything; try again in a moment"
	}
	return ""
}

// agentErr maps agent errors to exit codes.
func agentErr(err error) error {
	switch {
	case errors.Is(err, localapi.ErrUnreachable):
		return withCode(ExitUnreachable, err, "start one with `ov agent start` (or `sudo systemctl start ov-agent.socket` on a server)")
	case errors.Is(err, localapi.ErrServerDown):
		return withCode(ExitUnreachable, err, "is ov-server running? `journalctl -u ov-agent` (or the agent's log) says more")
	case errors.Is(err, localapi.ErrRateLimited):
		return withCode(ExitFailure, err)
	case errors.Is(err, localapi.ErrLocked):
		return withCode(ExitLocked, err, "run `ov agent unlock`")
	case errors.Is(err, localapi.ErrDenied), errors.Is(err, localapi.ErrUntrusted):
		return withCode(ExitDenied, err)
	case errors.Is(err, localapi.ErrNotFound):
		return withCode(ExitNotFound, err)
	}
	return err
}

// envError adds hints to the errors of reading an (app, env).
func envError(err error, app, env string) error {
	switch {
	case errors.Is(err, remote.ErrAppNotFound):
		return withCode(ExitNotFound, fmt.Errorf("no app %q on the server", app), "`ov app list` shows the apps; `ov secret import FILE --app A --env E` creates one")
	case errors.Is(err, remote.ErrEnvNotFound):
		return withCode(ExitNotFound, fmt.Errorf("no env %q in app %q", env, app), fmt.Sprintf("`ov env list --app %s` shows its envs", app))
	case errors.Is(err, remote.ErrTampered):
		return withHints(err, "the server's answer was refused and nothing was used; if this persists, the server or its database was altered")
	}
	return err
}

// machineError maps the machine read errors to exit codes and hints.
func machineError(err error, t target) error {
	switch {
	case errors.Is(err, remote.ErrOutOfScope):
		return withCode(ExitDenied, err, "derive a key for this app and env: ov auth derive-machine-key --app "+t.app+" --env "+t.env+" --out /etc/ov/"+t.app+"-"+t.env+".key")
	case errors.Is(err, remote.ErrMachineUnknown):
		return withCode(ExitRejected, err, "re-derive it: ov auth derive-machine-key --app "+t.app+" --env "+t.env+" --force --out PATH")
	case errors.Is(err, vault.ErrGrantExpired):
		return withCode(ExitRejected, err, "issue a new key with ov auth derive-machine-key --force")
	case errors.Is(err, remote.ErrNoCache), errors.Is(err, remote.ErrCacheTooOld), errors.Is(err, remote.ErrCacheFuture), errors.Is(err, vault.ErrBadCacheMAC):
		return withCode(ExitUnreachable, err)
	case errors.Is(err, remote.ErrNotAllowed):
		return withCode(ExitRejected, err, "this key was revoked or its grant expired: issue a new one with ov auth derive-machine-key --app "+t.app+" --env "+t.env+" --force --out PATH")
	}
	if errors.Is(err, remote.ErrStateUnsaved) {
		return withHints(err, "give the service a writable state directory (StateDirectory= in its unit), or pass --allow-unsaved-state to rely on the grant's signed floor alone")
	}
	return envError(err, t.app, t.env)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func historyError(err error, app, env string) error {
	if errors.Is(err, remote.ErrTampered) {
		return withHints(err, "the server's history was refused: a past version was dropped, reordered, replaced or forged; nothing was shown or written")
	}
	return envError(err, app, env)
}
