// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/opaquevault/opaquevault/credentials"
)

// systemConfigPath is the machine-wide config: not secret, one `key=value` a line. It names the
// server for machines and services that have no account config (DynamicUser=, service accounts).
var systemConfigPath = "/etc/ov/config"

// readSystemConfig reads /etc/ov/config. It must be a regular file owned by root or the caller and
// writable by nobody else. A missing file is not an error (empty map).
func readSystemConfig(path string) (map[string]string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("read %s: not a regular file", path)
	case fi.Mode().Perm()&0o022 != 0:
		return nil, fmt.Errorf("read %s: mode %04o lets others change it (must not be group- or world-writable)", path, fi.Mode().Perm())
	case st != nil && st.Uid != 0 && int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("read %s: owned by uid %d, want root or uid %d", path, st.Uid, os.Geteuid())
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("read %s:%d: want key=value", path, n)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

// writeSystemConfig writes /etc/ov/config atomically, 0644.
func writeSystemConfig(path string, m map[string]string) error {
	var b strings.Builder
	b.WriteString("# Written by ov. Not secret: it names the server for machine keys and the agent.\n")
	for _, k := range []string{"server"} {
		if v, ok := m[k]; ok {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	if err := credentials.WriteFileAtomic(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// machineServerURL picks the server for a machine key: --server, $OV_SERVER, /etc/ov/config, then
// the user's config when there is one.
func (a *App) machineServerURL() (string, error) {
	if a.g.Server != "" {
		return a.g.Server, nil
	}
	if s := a.env("OV_SERVER"); s != "" {
		return s, nil
	}
	sys, err := readSystemConfig(systemConfigPath)
	if err != nil {
		return "", err
	}
	if s := sys["server"]; s != "" {
		return s, nil
	}
	if cfg, _, err := a.loadConfig(); err == nil {
		defer cfg.wipe()
		if cfg.Server != "" {
			return cfg.Server, nil
		}
	}
	return "", usageErr("no server for the machine key",
		"pass --server URL, set OV_SERVER, or write server=URL to /etc/ov/config (`ov auth derive-machine-key --server-config` does)")
}
