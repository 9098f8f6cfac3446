// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
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

// readInviteFile reads an invite code from a 0600 file of the caller (a secret: never on argv).
func readInviteFile(path string) (string, error) {
	buf, err := credentials.ReadSecretFile(path, credentials.ReadOptions{MaxSize: maxPasswordFile})
	if err != nil {
		return "", withHints(fmt.Errorf("read invite file: %w", err), "create it with `install -m 600 /dev/null FILE` and write the invite code into it")
	}
	defer buf.Destroy()
	code := string(bytes.TrimSpace(buf.Bytes()))
	if code == "" {
		return "", fmt.Errorf("read invite file %s: it is empty", path)
	}
	return code, nil
}
