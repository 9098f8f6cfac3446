// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/secmem"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// unlockFlags are the flags of every command that unlocks the account with the password.
type unlockFlags struct {
	passwordFile string
}

func (u *unlockFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&u.passwordFile, "password-file", "", "read the master password from this 0600 file instead of the terminal")
}

// session is an unlocked account and a client for its server.
type session struct {
	cfg   *Config
	vault *remote.Vault
}

func (s *session) close() {
	if s == nil {
		return
	}
	s.vault.Account.Wipe()
	s.cfg.wipe()
}

// stateDir is $XDG_STATE_HOME/ov or ~/.local/state/ov; "" when there is no home directory (then
// rollback floors are kept in memory only, and ov says so).
func (a *App) stateDir() string {
	if d := a.env("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ov")
	}
	if home := a.home(); home != "" {
		return filepath.Join(home, ".local", "state", "ov")
	}
	return ""
}

// home is $HOME, else the passwd entry's home directory; "" when neither is an absolute path.
func (a *App) home() string {
	home := a.env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if !filepath.IsAbs(home) {
		return ""
	}
	return home
}

// stateFile joins a file name to dir, or returns "" (memory only) when dir is "".
func stateFile(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

// unlock loads the config, fetches the account bundle, asks for the password and unlocks the account.
func (a *App) unlock(ctx context.Context, u unlockFlags) (*session, error) {
	secmem.Harden()
	cfg, err := a.loggedIn()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*session, error) {
		cfg.wipe()
		return nil, err
	}
	cl, err := a.client(cfg)
	if err != nil {
		return fail(err)
	}
	bundle, err := cl.Account(ctx)
	if err != nil {
		return fail(fmt.Errorf("fetch account: %w", err))
	}
	if bundle.AccountID != cfg.AccountID {
		return fail(fmt.Errorf("fetch account: %w: the server answered for account %s, the config is for %s", remote.ErrTampered, bundle.AccountID, cfg.AccountID))
	}
	ask, err := vault.AccountSecretKeyFromBytes(cfg.AccountSecretKey)
	if err != nil {
		return fail(fmt.Errorf("read config: %w", err))
	}
	defer ask.Wipe()
	pw, err := a.readSecretInput("master password", u.passwordFile, false)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	pk, err := remote.PasswordKeys(pw, ask, bundle.AccountID, bundle.KDF)
	clear(pw)
	a.log.WithField("server", cl.Server()).WithField("argon2id", time.Since(start).Round(time.Millisecond)).Debug("derived the password keys")
	if err != nil {
		return fail(fmt.Errorf("unlock: %w", err))
	}
	defer pk.Wipe()
	acct, err := remote.Unlock(pk, bundle, cfg.SignPub)
	if err != nil {
		if errors.Is(err, vault.ErrWrongPassword) {
			return fail(withCode(ExitLocked, fmt.Errorf("unlock %s: %w", cfg.Email, err), "nothing was changed; try again"))
		}
		return fail(fmt.Errorf("unlock: %w", err))
	}
	if path, _ := a.configPath(); bundleChanged(cfg, bundle) {
		// The password changed on another device: keep the cached bundle current.
		cfg.KDF, cfg.KeyCheck, cfg.WrappedAK, cfg.AKVersion, cfg.WrappedSignSeed = bundle.KDF, bundle.KeyCheck, bundle.WrappedAK, bundle.AKVersion, bundle.WrappedSignSeed
		if err := a.saveConfig(path, cfg); err != nil {
			a.warnf("could not update the cached account parameters: %v", err)
		}
	}
	hw, err := remote.OpenHighWater(stateFile(a.stateDir(), "highwater.json"))
	if err != nil {
		acct.Wipe()
		return fail(err)
	}
	return &session{cfg: cfg, vault: &remote.Vault{Client: cl, Account: acct, HighWater: hw}}, nil
}

func bundleChanged(c *Config, b *api.AccountBundle) bool {
	return !bytes.Equal(c.WrappedAK, b.WrappedAK) || !bytes.Equal(c.KeyCheck, b.KeyCheck) ||
		c.AKVersion != b.AKVersion || !bytes.Equal(c.KDF.Salt, b.KDF.Salt) || c.KDF.T != b.KDF.T || c.KDF.M != b.KDF.M || c.KDF.P != b.KDF.P
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

var _ = credentials.ErrBadMode
