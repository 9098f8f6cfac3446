// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/vault"
)

func (a *App) changePassword(ctx context.Context, args []string) error {
	fs := a.flags()
	revoke := fs.Bool("revoke-machine-keys", false, "revoke every machine key of the account in the same step")
	keep := fs.Bool("keep-machine-keys", false, "keep the machine keys working (they do not derive from the password)")
	oldFile := fs.String("password-file", "", "read the current master password from this 0600 file")
	newFile := fs.String("new-password-file", "", "read the new master password from this 0600 file")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if *revoke && *keep {
		return usageErr("--revoke-machine-keys and --keep-machine-keys exclude each other")
	}
	tty, ttyErr := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if ttyErr == nil {
		defer tty.Close()
	}
	if !*revoke && !*keep && ttyErr != nil {
		return usageErr("without a terminal, say what happens to the machine keys: --revoke-machine-keys or --keep-machine-keys")
	}
	cfg, err := a.loggedIn()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	path, _ := a.configPath()
	cl, err := a.client(cfg)
	if err != nil {
		return err
	}
	bundle, err := cl.Account(ctx)
	if err != nil {
		return fmt.Errorf("fetch account: %w", err)
	}
	ask, err := vault.AccountSecretKeyFromBytes(cfg.AccountSecretKey)
	if err != nil {
		return err
	}
	defer ask.Wipe()
	oldPW, err := a.readSecretInput("current master password", "--password-file", *oldFile, false)
	if err != nil {
		return err
	}
	oldPK, err := remote.PasswordKeys(oldPW, ask, bundle.AccountID, bundle.KDF)
	clear(oldPW)
	if err != nil {
		return err
	}
	defer oldPK.Wipe()
	acct, err := remote.Unlock(oldPK, bundle, cfg.SignPub)
	if err != nil {
		return withHints(fmt.Errorf("change password: %w", err), "nothing was changed")
	}
	defer acct.Wipe()
	if !*revoke && !*keep {
		ms, err := cl.Machines(ctx)
		if err != nil {
			return fmt.Errorf("list machine keys: %w", err)
		}
		if n := len(ms.Machines); n > 0 {
			fmt.Fprintf(tty, "Machine keys do not derive from the password and keep working after this change.\nRevoke all %d machine key(s)? [y/N] ", n)
			var answer string
			_, _ = fmt.Fscanln(tty, &answer)
			*revoke = strings.EqualFold(strings.TrimSpace(answer), "y") || strings.EqualFold(strings.TrimSpace(answer), "yes")
		}
	}
	newPW, err := a.readSecretInput("new master password", "--new-password-file", *newFile, true)
	if err != nil {
		return err
	}
	defer clear(newPW)
	if n := len([]rune(string(newPW))); n < minPasswordLen {
		return usageErr(fmt.Sprintf("change password: the new password has %d characters; use at least %d", n, minPasswordLen))
	}
	req, err := remote.NewPasswordChange(oldPK, acct, ask, newPW, newKDFParams(), *revoke)
	if err != nil {
		return err
	}
	if *revoke {
		// Signed first, so that no later rotation re-wraps for them whatever the server lists.
		hw, err := remote.OpenHighWater(stateFile(a.stateDir(), "highwater.json"))
		if err != nil {
			return err
		}
		v := &remote.Vault{Client: cl, Account: acct, HighWater: hw}
		ms, err := v.Machines(ctx)
		if err != nil {
			return err
		}
		if len(ms) > 0 {
			if _, err := v.Revoke(ctx, ms); err != nil {
				return withHints(fmt.Errorf("change password: %w", err), "the password was not changed")
			}
		}
	}
	if err := cl.ChangePassword(ctx, req); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	cfg.KDF, cfg.KeyCheck, cfg.WrappedAK = req.KDF, req.KeyCheck, req.WrappedAK
	if err := a.saveConfig(path, cfg); err != nil {
		a.warnf("the password changed, but the config could not be updated (%v); the next command refreshes it", err)
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"changed": true, "machine_keys_revoked": *revoke})
	}
	fmt.Fprintln(a.io.Out, "✓ Master password changed; only the account key's wrap was re-encrypted.")
	if *revoke {
		fmt.Fprintln(a.io.Out, "✗ Every machine key was revoked: re-derive them with `ov auth derive-machine-key --force --out /etc/ov/<app>.key` and restart the services.")
	} else {
		fmt.Fprintln(a.io.Out, "Machine keys keep working. `ov auth machine-key revoke --all` cuts them off (add --rotate after a compromise).")
	}
	return nil
}
