// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
)

// configSchema is the version of the config file format.
const configSchema = 1

// maxConfigSize bounds the config file.
const maxConfigSize = 1 << 20

// Config is ~/.config/ov/config: the account's public parameters, its Account Secret Key and this
// device's API key. It is secret (0600, owner checked) and written atomically.
type Config struct {
	SchemaVersion    int     `json:"schema_version"`
	Server           string  `json:"server"`
	Email            string  `json:"email"`
	AccountID        string  `json:"account_id"`
	AccountSecretKey []byte  `json:"account_secret_key,omitempty"`
	KDF              api.KDF `json:"kdf"`
	KeyCheck         []byte  `json:"key_check"`
	WrappedAK        []byte  `json:"wrapped_ak"`
	AKVersion        uint32  `json:"ak_version"`
	WrappedSignSeed  []byte  `json:"wrapped_sign_seed"`
	SignPub          []byte  `json:"sign_pub"`
	DeviceKeyID      string  `json:"device_key_id,omitempty"`
	DeviceToken      string  `json:"device_token,omitempty"`
}

// wipe clears the secret fields that are byte slices.
func (c *Config) wipe() {
	if c != nil {
		clear(c.AccountSecretKey)
	}
}

// configPath resolves --config, $XDG_CONFIG_HOME/ov/config, ~/.config/ov/config.
func (a *App) configPath() (string, error) {
	if a.g.Config != "" {
		return a.g.Config, nil
	}
	if d := a.env("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ov", "config"), nil
	}
	home := a.env("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find config: no home directory: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".config", "ov", "config"), nil
}

// loadConfig reads the config; a missing file is ErrNotLoggedIn ("config not found").
func (a *App) loadConfig() (*Config, string, error) {
	path, err := a.configPath()
	if err != nil {
		return nil, "", err
	}
	buf, err := credentials.ReadSecretFile(path, credentials.ReadOptions{MaxSize: maxConfigSize})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, path, fmt.Errorf("config not found: %s: %w", path, ErrNotLoggedIn)
		}
		return nil, path, fmt.Errorf("read config: %w", err)
	}
	defer buf.Destroy()
	var c Config
	if err := json.Unmarshal(buf.Bytes(), &c); err != nil {
		return nil, path, fmt.Errorf("read config %s: %v", path, err)
	}
	if c.SchemaVersion != configSchema {
		return nil, path, fmt.Errorf("read config %s: schema version %d is not supported (want %d)", path, c.SchemaVersion, configSchema)
	}
	return &c, path, nil
}

// loggedIn loads the config and requires a device key.
func (a *App) loggedIn() (*Config, error) {
	c, _, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	if c.DeviceToken == "" {
		c.wipe()
		return nil, fmt.Errorf("this device is logged out: %w", ErrNotLoggedIn)
	}
	return c, nil
}

// saveConfig writes the config atomically, 0600, creating its directory 0700.
func (a *App) saveConfig(path string, c *Config) error {
	c.SchemaVersion = configSchema
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	defer clear(b)
	if err := credentials.WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// serverURL picks --server, then $OV_SERVER, then the config's.
func (a *App) serverURL(c *Config) (string, error) {
	switch {
	case a.g.Server != "":
		return a.g.Server, nil
	case a.env("OV_SERVER") != "":
		return a.env("OV_SERVER"), nil
	case c != nil && c.Server != "":
		return c.Server, nil
	}
	return "", usageErr("no server given", "pass --server URL or set OV_SERVER")
}

// client returns an API client for the config's device (token may be empty).
func (a *App) client(c *Config) (*api.Client, error) {
	server, err := a.serverURL(c)
	if err != nil {
		return nil, err
	}
	tok := ""
	if c != nil {
		tok = c.DeviceToken
		if tok != "" && c.Server != "" && !sameServer(server, c.Server) {
			return nil, withCode(ExitUsage, fmt.Errorf("this device's API key belongs to %s; refusing to send it to %s", c.Server, server),
				"leave out --server and $OV_SERVER, or use --config for an account on that server")
		}
	}
	cl, err := api.NewClient(server, api.ClientOptions{Token: tok})
	if err != nil {
		return nil, usageErr(err.Error())
	}
	return cl, nil
}

// sameServer compares two server URLs, ignoring case in the scheme and host and a trailing slash.
func sameServer(a, b string) bool {
	norm := func(s string) string {
		u, err := url.Parse(strings.TrimSuffix(s, "/"))
		if err != nil {
			return s
		}
		u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		return u.String()
	}
	return norm(a) == norm(b)
}

// loggedInClient loads a logged-in config and a client for its server. The caller wipes the config.
func (a *App) loggedInClient() (*Config, *api.Client, error) {
	cfg, err := a.loggedIn()
	if err != nil {
		return nil, nil, err
	}
	cl, err := a.client(cfg)
	if err != nil {
		cfg.wipe()
		return nil, nil, err
	}
	return cfg, cl, nil
}
