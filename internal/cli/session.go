// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

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
	pw, err := a.readSecretInput("master password", "--password-file", u.passwordFile, false)
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
