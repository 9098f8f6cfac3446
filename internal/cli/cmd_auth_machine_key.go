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
	"slices"
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

func (a *App) machineKeyList(ctx context.Context, args []string) error {
	fs := a.flags()
	passwordNotNeeded(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	cfg, cl, err := a.loggedInClient()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	v := &remote.Vault{Client: cl, Account: &remote.Account{SignPub: cfg.SignPub}}
	ms, err := v.Machines(ctx)
	if err != nil {
		return err
	}
	type row struct {
		ID       string     `json:"machine_id"`
		Label    string     `json:"label"`
		Scopes   []string   `json:"scopes"`
		Wide     bool       `json:"account_wide"`
		Verified bool       `json:"grant_verified"`
		Created  time.Time  `json:"created_at"`
		LastSeen *time.Time `json:"last_seen_at,omitempty"`
		Expires  *time.Time `json:"not_after,omitempty"`
		Expired  bool       `json:"expired"`
		Misfiled bool       `json:"grant_misfiled,omitempty"`
	}
	rows := []row{}
	for _, m := range ms {
		r := row{ID: m.MachineID, Label: m.Label, Wide: m.AccountWide, Verified: m.Grant != nil, Created: m.CreatedAt, LastSeen: m.LastSeenAt, Expires: m.NotAfter, Expired: m.Expired, Misfiled: m.Misfiled, Scopes: []string{}}
		if m.Grant != nil {
			r.Scopes = append(r.Scopes, remote.GrantScopes(m.Grant)...)
		}
		rows = append(rows, r)
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"machine_keys": rows})
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.io.Err, "no machine keys")
		return nil
	}
	for _, r := range rows {
		scope := strings.Join(r.Scopes, ",")
		switch {
		case r.Misfiled:
			scope = "GRANT OF ANOTHER MACHINE"
		case !r.Verified:
			scope = "GRANT DOES NOT VERIFY"
		case r.Wide:
			scope = "account-wide"
		}
		seen := "never used"
		if r.LastSeen != nil {
			seen = "last used " + r.LastSeen.UTC().Format("2006-01-02 15:04")
		}
		exp := ""
		if r.Expired {
			exp = ", EXPIRED"
		} else if r.Expires != nil {
			exp = ", expires " + r.Expires.UTC().Format("2006-01-02")
		}
		fmt.Fprintf(a.io.Out, "%s  %-28s  %s  (%s%s)\n", r.ID, scope, r.Label, seen, exp)
	}
	return nil
}

func (a *App) machineKeyRevoke(ctx context.Context, args []string) error {
	fs := a.flags()
	all := fs.Bool("all", false, "revoke every machine key of the account")
	rotate := fs.Bool("rotate", false, "also re-key the envs the keys could open, so that copies of the key read nothing written afterwards")
	var u unlockFlags
	u.add(fs)
	ids, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return usageErr("name the machine keys to revoke, or pass --all", "`ov auth machine-key list` shows them")
	}
	cfg, cl, err := a.loggedInClient()
	if err != nil {
		return err
	}
	lister := &remote.Vault{Client: cl, Account: &remote.Account{SignPub: cfg.SignPub}}
	ms, err := lister.Machines(ctx)
	cfg.wipe()
	if err != nil {
		return err
	}
	byID := map[string]remote.MachineInfo{}
	for _, m := range ms {
		byID[m.MachineID] = m
	}
	if *all {
		ids = nil
		for _, m := range ms {
			ids = append(ids, m.MachineID)
		}
		if len(ids) == 0 {
			fmt.Fprintln(a.io.Err, "no machine keys to revoke")
			return nil
		}
	}
	var revoked []remote.MachineInfo
	var unlisted []string
	for _, id := range ids {
		m, ok := byID[id]
		if !ok {
			// A server that hides a key now could list it again at the next rotation: a well-formed
			// id goes on the signed revocation list all the same.
			if _, err := remote.DecodeID("machine id", id); err != nil || *rotate {
				return withCode(ExitNotFound, fmt.Errorf("revoke: no machine key %s", id), "`ov auth machine-key list` shows them")
			}
			unlisted = append(unlisted, id)
			m = remote.MachineInfo{Machine: api.Machine{MachineID: id}}
		}
		revoked = append(revoked, m)
	}
	// Hard revoke: every env a revoked key could open gets a new key in one commit that also deletes
	// the machines.
	scopes := map[remote.ScopeName]bool{}
	for _, m := range revoked {
		if !*rotate {
			break
		}
		if m.Grant == nil {
			return fmt.Errorf("revoke %s --rotate: its grant does not verify, so its scopes are unknown", m.MachineID)
		}
		if m.Grant.AccountWide() {
			return withHints(fmt.Errorf("revoke %s --rotate: an account-wide key held the account key itself, which re-keying envs cannot take back", m.MachineID),
				"revoke it without --rotate now, then move the secrets to a new account or rotate them upstream")
		}
		for _, sc := range m.Grant.Scopes {
			scopes[remote.ScopeName{App: sc.AppName, Env: sc.EnvName}] = true
		}
	}
	// The revocation is signed first: it is what keeps every later rotation from re-wrapping for
	// these keys, whatever the server goes on listing.
	s, err := a.unlock(ctx, u)
	if err != nil {
		return err
	}
	defer s.close()
	list, err := s.vault.Revoke(ctx, revoked)
	if err != nil {
		return envError(err, "", "")
	}
	for sc := range scopes {
		res, err := s.vault.Rotate(ctx, sc.App, sc.Env, ids)
		if err != nil {
			return envError(err, sc.App, sc.Env)
		}
		fmt.Fprintf(a.io.Out, "↻ %s: new key (epoch %d), every record re-sealed; %d other machine key(s) re-wrapped\n", sc, res.Epoch, len(res.Rewrapped))
	}
	for _, id := range unlisted {
		fmt.Fprintf(a.io.Out, "✗ %s is not listed by the server; the signed revocation list (seq %d) names it, so no rotation re-wraps for it\n", id, list.Seq)
	}
	for _, id := range ids {
		if slices.Contains(unlisted, id) {
			continue
		}
		if err := cl.RevokeMachine(ctx, id); err != nil && !errors.Is(err, api.ErrNotFound) {
			return fmt.Errorf("revoke %s: %w (it is on the signed revocation list: no rotation re-wraps for it)", id, err)
		}
		if *rotate {
			fmt.Fprintf(a.io.Out, "✗ %s revoked\n", id)
		} else {
			fmt.Fprintf(a.io.Out, "✗ %s revoked: the server forgot it, and the signed revocation list (seq %d) names it\n", id, list.Seq)
		}
	}
	if *rotate {
		a.hintf("values the revoked machines saw in plaintext must still be rotated where they were issued (database passwords, API keys)")
	} else {
		a.hintf("add --rotate after a compromise: until its envs are re-keyed, a copy of the key and of the server's data still opens what it could open")
	}
	return nil
}
