// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/vault"
)

func (a *App) deriveMachineKey(ctx context.Context, args []string) error {
	fs := a.flags()
	out := fs.String("out", "", "where to write the 32-byte key: a new file (0600, owned by you), or - for a pipe (required)")
	app := fs.String("app", "", "scope the key to this app (with --env)")
	envs := fs.StringArray("env", nil, "scope the key to this env of --app (repeatable)")
	scopes := fs.StringArray("scope", nil, "scope the key to APP/ENV (repeatable)")
	expires := fs.String("expires", "", "the key stops working after this long, such as 90d (default: never)")
	force := fs.Bool("force", false, "replace an existing key file, and revoke the key it held")
	owner := fs.String("owner", "", "as root: the user that will own the key file (the service's User=)")
	label := fs.String("label", "", "a label for `ov auth machine-key list` (default: host:path)")
	serverCfg := fs.Bool("server-config", false, "also write the server URL to /etc/ov/config, for services without an account config")
	var u unlockFlags
	u.add(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("--out is required", "usage: ov "+a.cmd.usage)
	}
	var req remote.MachineRequest
	if (*app == "") != (len(*envs) == 0) {
		return usageErr("--app and --env go together")
	}
	if err := checkScopeFlags(*app, *envs...); err != nil {
		return err
	}
	for _, e := range *envs {
		req.Scopes = append(req.Scopes, remote.ScopeName{App: *app, Env: e})
	}
	for _, s := range *scopes {
		ap, en, ok := strings.Cut(s, "/")
		if !ok || ap == "" || en == "" {
			return usageErr(fmt.Sprintf("--scope %q: want APP/ENV", s))
		}
		if err := checkScopeFlag("--scope", "app", ap); err != nil {
			return err
		}
		if err := checkScopeFlag("--scope", "env", en); err != nil {
			return err
		}
		req.Scopes = append(req.Scopes, remote.ScopeName{App: ap, Env: en})
	}
	if *expires != "" {
		d, err := parseDuration(*expires)
		if err != nil {
			return usageErr("--expires: " + err.Error())
		}
		req.NotAfter = time.Now().Add(d)
	}
	toPipe := *out == "-"
	if toPipe {
		if f, ok := a.io.Out.(*os.File); ok && isTerminal(f) {
			return usageErr("--out - writes the raw key to stdout, which is a terminal", "pipe it, for example into `systemd-creds encrypt --name=ov-myapp - /etc/credstore.encrypted/ov-myapp`")
		}
	} else if !filepath.IsAbs(*out) {
		abs, err := filepath.Abs(*out)
		if err != nil {
			return err
		}
		*out = abs
	}
	wopts := credentials.WriteOptions{Force: *force, What: "machine key"}
	uid := os.Geteuid()
	if *owner != "" {
		usr, err := user.Lookup(*owner)
		if err != nil {
			return usageErr(fmt.Sprintf("--owner %q: no such user", *owner))
		}
		uid, _ = strconv.Atoi(usr.Uid)
		gid, _ := strconv.Atoi(usr.Gid)
		if uid != os.Geteuid() && os.Geteuid() != 0 {
			return withCode(ExitDenied, fmt.Errorf("--owner %s: only root can give a file to another user", *owner))
		}
		wopts = wopts.WithOwner(uid, gid)
	}
	// Before the password prompt: refuse to replace a key without --force, and find the key being
	// replaced so that it can be revoked.
	var replaced string
	if !toPipe {
		if _, err := os.Lstat(*out); err == nil {
			if !*force {
				return withCode(ExitFailure, fmt.Errorf("write machine key %s: the file exists", *out), "pass --force to replace it (the key it holds is revoked)")
			}
			buf, err := credentials.ReadKeyFile(*out, credentials.ReadOptions{}.WithOwner(uid))
			if err != nil {
				a.warnf("the key being replaced cannot be read (%v); it is not revoked: revoke it with `ov auth machine-key revoke ID`", err)
			} else if mk, err := vault.ParseMachineKeyFile(buf.Bytes()); err == nil {
				replaced = remote.MachineIDOf(mk)
				mk.Wipe()
			}
			if buf != nil {
				buf.Destroy()
			}
		}
	}
	if *label == "" {
		host, _ := os.Hostname()
		*label = host + ":" + map[bool]string{true: "(pipe)", false: *out}[toPipe]
	}
	req.Label = *label
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	issued, err := s.vault.IssueMachine(ctx, req)
	if err != nil {
		return envError(err, *app, strings.Join(*envs, ","))
	}
	defer issued.Key.Wipe()
	if toPipe {
		if _, err := a.io.Out.Write(issued.Key.Bytes()); err != nil {
			_ = s.vault.Client.RevokeMachine(ctx, issued.ID)
			return fmt.Errorf("write machine key to stdout: %w (the new key was revoked)", err)
		}
	} else if err := credentials.WriteKeyFile(*out, issued.Key.Bytes(), wopts); err != nil {
		// With --force over our own key in a directory we cannot write (the guide's root-owned /etc/ov),
		// replace the key's bytes in place instead of renaming a new file over it.
		inPlace := *force && replaced != "" && *owner == "" && errors.Is(err, iofs.ErrPermission)
		if !inPlace || rewriteKeyInPlace(*out, issued.Key.Bytes()) != nil {
			_ = s.vault.Client.RevokeMachine(ctx, issued.ID)
			return withHints(fmt.Errorf("%w (the new key was revoked on the server)", err), "nothing was left behind; fix the problem and run the command again")
		}
		a.hintf("%s is in a directory you cannot write, so the key was rewritten in place (same file, owner and mode)", filepath.Dir(*out))
	}
	msg := a.io.Out
	if toPipe {
		msg = a.io.Err
	}
	if replaced != "" && replaced != issued.ID {
		if err := revokeReplaced(ctx, s.vault, replaced); err != nil {
			a.warnf("sign the revocation of the replaced key %s: %v; revoke it with `ov auth machine-key revoke %s`", replaced, err, replaced)
		}
		if err := s.vault.Client.RevokeMachine(ctx, replaced); errors.Is(err, api.ErrNotFound) {
			fmt.Fprintf(msg, "The replaced machine key %s was already revoked.\n", replaced)
		} else if err != nil {
			a.warnf("revoke the replaced key %s: %v; revoke it with `ov auth machine-key revoke %s`", replaced, err, replaced)
		} else {
			fmt.Fprintf(msg, "Revoked the replaced machine key %s.\n", replaced)
		}
	}
	if *serverCfg {
		if err := writeSystemConfig(systemConfigPath, map[string]string{"server": s.vault.Client.Server()}); err != nil {
			a.warnf("%v", err)
		}
	}
	if a.g.JSON && !toPipe {
		return a.printJSON(map[string]any{"machine_id": issued.ID, "path": *out, "scopes": remote.GrantScopes(issued.Grant), "account_wide": len(req.Scopes) == 0, "revoked": replaced})
	}
	where := *out + " (0600)"
	if toPipe {
		where = "stdout"
	}
	fmt.Fprintf(msg, "✓ Machine key %s written to %s.\n", issued.ID, where)
	if len(req.Scopes) == 0 {
		a.warnf("this key is account-wide: it opens every app and env of the account, including ones created later")
		a.hintf("scope it instead: ov auth derive-machine-key --app APP --env ENV --out %s --force", *out)
	} else {
		fmt.Fprintf(msg, "  It opens only: %s\n", strings.Join(remote.GrantScopes(issued.Grant), ", "))
	}
	if !req.NotAfter.IsZero() {
		fmt.Fprintf(msg, "  It expires on %s.\n", req.NotAfter.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if !toPipe && len(req.Scopes) > 0 {
		sc := req.Scopes[0]
		agentInstallHint(msg, *out, sc.App, sc.Env, currentUserName())
		fmt.Fprintf(msg, "  and in the unit: ExecStart=/usr/bin/ov run --app %s --env %s --machine-key %s -- /path/to/your/server\n", sc.App, sc.Env, *out)
	}
	return nil
}

// revokeReplaced signs the revocation of the key a --force replaced (and re-signs the allowed sets
// of its scopes without it).
func revokeReplaced(ctx context.Context, v *remote.Vault, id string) error {
	ms, err := v.Machines(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.MachineID == id {
			_, err := v.Revoke(ctx, []remote.MachineInfo{m})
			return err
		}
	}
	raw, err := hex.DecodeString(id)
	if err != nil {
		return err
	}
	_, err = v.RecordRevocations(ctx, [][]byte{raw})
	return err
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "$USER"
}
