// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/remote"
)

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
