// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"strings"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// newKDFParams chooses the KDF parameters of a new password; tests swap it for cheap ones.
var newKDFParams = vault.NewKDFParams

// minPasswordLen is the shortest master password accepted at registration.
const minPasswordLen = 10

func (a *App) authRegister(ctx context.Context, args []string) error {
	fs := a.flags()
	email := fs.String("email", "", "the account's email address (required)")
	pwFile := fs.String("password-file", "", "read the master password from this 0600 file instead of the terminal")
	kitFile := fs.String("emergency-kit", "", "write the Emergency Kit to this new 0600 file instead of printing it")
	device := fs.String("device-name", defaultDeviceName(), "a name for this device in `ov auth devices`")
	inviteFile := fs.String("invite-file", "", "read the server's invite code from this 0600 file (asked on the terminal when the server needs one)")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return usageErr("--email is required", "usage: ov "+a.cmd.usage)
	}
	if _, err := mail.ParseAddress(*email); err != nil || strings.ContainsAny(*email, " <>") {
		return usageErr(fmt.Sprintf("--email %q is not an email address", *email))
	}
	path, err := a.configPath()
	if err != nil {
		return err
	}
	if old, _, err := a.loadConfig(); err == nil {
		old.wipe()
		return withCode(ExitFailure, fmt.Errorf("register: %s already holds an account (%s)", path, old.Email),
			"run `ov auth logout --forget` first, or pass --config to use another config file")
	} else if !errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	cl, err := a.client(nil)
	if err != nil {
		return err
	}
	if err := cl.Health(ctx); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	pw, err := a.readSecretInput("master password", "--password-file", *pwFile, true)
	if err != nil {
		return err
	}
	defer clear(pw)
	if n := len([]rune(string(pw))); n < minPasswordLen {
		return usageErr(fmt.Sprintf("register: the master password has %d characters; use at least %d", n, minPasswordLen))
	}
	dev := remote.NewDevice(*device)
	reg, err := remote.NewAccount(*email, pw, newKDFParams(), dev)
	if err != nil {
		return err
	}
	defer reg.ASK.Wipe()
	defer reg.Account.Wipe()
	if *inviteFile != "" {
		if reg.Request.Invite, err = readInviteFile(*inviteFile); err != nil {
			return err
		}
	}
	_, err = cl.Register(ctx, reg.Request)
	if isAPICode(err, api.CodeInviteRequired) && *inviteFile == "" {
		// Nothing was created: ask for the code on the terminal, if there is one, and try again.
		if code, perr := a.readSecretInput("invite code", "--invite-file", "", false); perr == nil {
			reg.Request.Invite = strings.TrimSpace(string(code))
			clear(code)
			_, err = cl.Register(ctx, reg.Request)
		}
	}
	if err != nil {
		if errors.Is(err, api.ErrConflict) {
			return withCode(ExitFailure, fmt.Errorf("register %s: the server already has an account for this email", *email),
				"run `ov auth login` to log this device in to it")
		}
		return fmt.Errorf("register: %w", err)
	}
	r := reg.Request
	cfg := &Config{
		Server: cl.Server(), Email: *email, AccountID: r.AccountID,
		AccountSecretKey: bytes.Clone(reg.ASK.Bytes()),
		KDF:              r.KDF, KeyCheck: r.KeyCheck, WrappedAK: r.WrappedAK, AKVersion: r.AKVersion,
		WrappedSignSeed: r.WrappedSignSeed, SignPub: r.SignPub,
		DeviceKeyID: dev.Wire.KeyID, DeviceToken: dev.Token,
	}
	defer cfg.wipe()
	if err := a.saveConfig(path, cfg); err != nil {
		return err
	}
	kit := emergencyKit(cfg, reg.ASK)
	defer clear(kit)
	if *kitFile != "" {
		if err := credentials.WriteKeyFile(*kitFile, kit, credentials.WriteOptions{}); err != nil {
			return fmt.Errorf("write emergency kit: %w", err)
		}
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"account_id": cfg.AccountID, "email": cfg.Email, "server": cfg.Server,
			"device_key_id": cfg.DeviceKeyID, "config": path, "emergency_kit_file": *kitFile})
	}
	fmt.Fprintf(a.io.Out, "Registered %s on %s; this device is logged in (config %s).\n", *email, cl.Server(), path)
	if *kitFile != "" {
		fmt.Fprintf(a.io.Out, "The Emergency Kit was written to %s (0600). Print it, store it offline, then delete the file.\n", *kitFile)
		return nil
	}
	fmt.Fprintln(a.io.Out)
	_, _ = a.io.Out.Write(kit)
	return nil
}

// emergencyKit returns the kit for c; the Account Secret Key's text goes straight into the byte slice,
// which the caller clears.
func emergencyKit(c *Config, ask *vault.AccountSecretKey) []byte {
	text := ask.Text()
	defer clear(text)
	kit := fmt.Appendf(nil, "==================== OpaqueVault Emergency Kit ====================\nServer:              %s\nEmail:               %s\nAccount Secret Key:  ", c.Server, c.Email)
	kit = append(kit, text...)
	return append(kit, `
To log in on another device you need this Account Secret Key AND your
master password; neither is ever sent to the server, and neither can be
recovered if both copies are lost. Keep this kit offline (printed, or in
a password manager), not next to your password and never in a repository.
This is the only time ov prints it.
====================================================================
`...)
}

func defaultDeviceName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "device"
	}
	return h
}

func (a *App) authLogin(ctx context.Context, args []string) error {
	fs := a.flags()
	email := fs.String("email", "", "the account's email address (default: the config's)")
	pwFile := fs.String("password-file", "", "read the master password from this 0600 file instead of the terminal")
	askFile := fs.String("secret-key-file", "", "read the Account Secret Key from this 0600 file (default: the config's, else the terminal)")
	device := fs.String("device-name", defaultDeviceName(), "a name for this device in `ov auth devices`")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	path, err := a.configPath()
	if err != nil {
		return err
	}
	old, _, err := a.loadConfig()
	if err != nil && !errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	defer old.wipe()
	if *email == "" && old != nil {
		*email = old.Email
	}
	if *email == "" {
		return usageErr("--email is required (no config to take it from)", "usage: ov "+a.cmd.usage)
	}
	if old != nil && old.DeviceToken != "" && strings.EqualFold(old.Email, *email) {
		return withCode(ExitFailure, fmt.Errorf("login: this device is already logged in as %s", old.Email), "run `ov auth logout` first to enrol it again")
	}
	cl, err := a.client(old)
	if err != nil {
		return err
	}
	var ask *vault.AccountSecretKey
	switch {
	case *askFile != "":
		buf, err := credentials.ReadSecretFile(*askFile, credentials.ReadOptions{MaxSize: 4096, What: "secret key file"})
		if err != nil {
			return err
		}
		ask, err = vault.ParseAccountSecretKey(buf.Bytes())
		buf.Destroy()
		if err != nil {
			return fmt.Errorf("read %s: %w", *askFile, err)
		}
	case old != nil && len(old.AccountSecretKey) > 0 && strings.EqualFold(old.Email, *email):
		if ask, err = vault.AccountSecretKeyFromBytes(old.AccountSecretKey); err != nil {
			return err
		}
	default:
		typed, err := a.readSecretInput("Account Secret Key (from your Emergency Kit)", "--secret-key-file", "", false)
		if err != nil {
			return withHints(err, "or pass --secret-key-file FILE")
		}
		ask, err = vault.ParseAccountSecretKey(typed)
		clear(typed)
		if err != nil {
			return err
		}
	}
	defer ask.Wipe()
	params, err := cl.LoginParams(ctx, *email)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	pw, err := a.readSecretInput("master password", "--password-file", *pwFile, false)
	if err != nil {
		return err
	}
	pk, err := remote.PasswordKeys(pw, ask, params.AccountID, params.KDF)
	clear(pw)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	defer pk.Wipe()
	dev := remote.NewDevice(*device)
	bundle, err := cl.Login(ctx, &api.LoginRequest{Email: *email, LoginAuth: bytes.Clone(pk.LoginAuth().Bytes()), Device: dev.Wire})
	if err != nil {
		if errors.Is(err, api.ErrUnauthorized) {
			return withCode(ExitLocked, fmt.Errorf("login %s: %w", *email, vault.ErrWrongPassword), "nothing was changed; try again")
		}
		return fmt.Errorf("login: %w", err)
	}
	var pinned []byte
	if old != nil && strings.EqualFold(old.Email, *email) && old.AccountID == bundle.AccountID {
		pinned = old.SignPub
	}
	acct, err := remote.Unlock(pk, bundle, pinned)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	defer acct.Wipe()
	cfg := &Config{
		Server: cl.Server(), Email: *email, AccountID: bundle.AccountID, AccountSecretKey: bytes.Clone(ask.Bytes()),
		KDF: bundle.KDF, KeyCheck: bundle.KeyCheck, WrappedAK: bundle.WrappedAK, AKVersion: bundle.AKVersion,
		WrappedSignSeed: bundle.WrappedSignSeed, SignPub: bytes.Clone(acct.SignPub),
		DeviceKeyID: dev.Wire.KeyID, DeviceToken: dev.Token,
	}
	defer cfg.wipe()
	if err := a.saveConfig(path, cfg); err != nil {
		return err
	}
	if a.g.JSON {
		return a.printJSON(map[string]any{"account_id": cfg.AccountID, "email": cfg.Email, "server": cfg.Server, "device_key_id": cfg.DeviceKeyID, "config": path})
	}
	fmt.Fprintf(a.io.Out, "Logged in as %s on %s (device %s, config %s).\n", *email, cl.Server(), dev.Wire.KeyID, path)
	return nil
}

func (a *App) authLogout(ctx context.Context, args []string) error {
	fs := a.flags()
	forget := fs.Bool("forget", false, "also delete the config file, including the saved Account Secret Key")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	if cfg.DeviceToken != "" {
		cl, err := a.client(cfg)
		if err != nil {
			return err
		}
		if err := cl.RevokeDevice(ctx, "self"); err != nil && !errors.Is(err, api.ErrUnauthorized) {
			return withHints(fmt.Errorf("logout: revoke this device's API key: %w", err), "the config was left as it was; try again when the server answers")
		}
	}
	if *forget {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		fmt.Fprintf(a.io.Out, "Logged out; deleted %s.\n", path)
		return nil
	}
	cfg.DeviceKeyID, cfg.DeviceToken = "", ""
	if err := a.saveConfig(path, cfg); err != nil {
		return err
	}
	fmt.Fprintf(a.io.Out, "Logged out; this device's API key is revoked. `ov auth login` logs in again.\n")
	return nil
}

func (a *App) authStatus(ctx context.Context, args []string) error {
	fs := a.flags()
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	server, _ := a.serverURL(cfg)
	st := map[string]any{"config": path, "server": server, "email": cfg.Email, "account_id": cfg.AccountID,
		"device_key_id": cfg.DeviceKeyID, "logged_in": cfg.DeviceToken != ""}
	state := "logged out"
	var serr error
	if cfg.DeviceToken != "" {
		cl, err := a.client(cfg)
		if err != nil {
			return err
		}
		_, serr = cl.Account(ctx)
		switch {
		case serr == nil:
			state = "logged in; the server accepts this device"
		case errors.Is(serr, api.ErrUnauthorized):
			state = "the server rejects this device's API key (revoked?)"
		default:
			state = "logged in; server not reachable"
		}
		st["server_ok"] = serr == nil
	}
	if a.g.JSON {
		if err := a.printJSON(st); err != nil {
			return err
		}
	} else {
		w := a.io.Out
		fmt.Fprintf(w, "Config:   %s\nServer:   %s\nAccount:  %s (%s)\nDevice:   %s\nStatus:   %s\n", path, server, cfg.Email, cfg.AccountID, orDash(cfg.DeviceKeyID), state)
	}
	if serr != nil {
		return serr
	}
	if cfg.DeviceToken == "" {
		return fmt.Errorf("status: %w", ErrNotLoggedIn)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
