// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// Cache keeps the last verified server answers of a machine, so that `ov run` starts when the server
// is down. It holds only what the server holds (ciphertext, wraps, signed manifests and grants), in
// 0600 files; every use verifies it again as a server answer.
type Cache struct {
	Dir string
}

// cacheFile is what a cache file holds: the entry's exact JSON bytes and their MAC under a key only
// the machine key derives (vault.MachineKey.CacheMAC), which covers the fetch time, the (app, env)
// and the machine. A file whose MAC fails (altered, or written without the key) is not used.
type cacheFile struct {
	Format string          `json:"format"`
	Entry  json.RawMessage `json:"entry"`
	MAC    []byte          `json:"mac"`
}

const cacheFormat = "ov-machine-cache/2"

type cacheEntry struct {
	FetchedAt time.Time       `json:"fetched_at"`
	Self      api.MachineSelf `json:"machine"`
	AppID     string          `json:"app_id"`
	EnvID     string          `json:"env_id"`
	Env       api.EnvState    `json:"env"`
}

func (c *Cache) path(mk *vault.MachineKey, appName, envName string) string {
	id := mk.ID()
	h := sha256.Sum256([]byte(appName + "\x00" + envName))
	return filepath.Join(c.Dir, "machine-"+hex.EncodeToString(id[:]), hex.EncodeToString(h[:12])+".json")
}

func (c *Cache) save(mk *vault.MachineKey, appName, envName string, e *cacheEntry) error {
	p := c.path(mk, appName, envName)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	entry, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	mac := mk.CacheMAC(appName, envName, entry)
	b, err := json.Marshal(&cacheFile{Format: cacheFormat, Entry: entry, MAC: mac[:]})
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	if err := credentials.WriteFileAtomic(p, b, 0o600); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	return nil
}

func (c *Cache) load(mk *vault.MachineKey, appName, envName string) (*cacheEntry, error) {
	p := c.path(mk, appName, envName)
	buf, err := credentials.ReadSecretFile(p, credentials.ReadOptions{MaxSize: 64 << 20, What: "cache file"})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w for %s/%s in %s", ErrNoCache, appName, envName, c.Dir)
	}
	if err != nil {
		return nil, err
	}
	defer buf.Destroy()
	var f cacheFile
	if err := json.Unmarshal(buf.Bytes(), &f); err != nil {
		return nil, fmt.Errorf("read cache file %s: %v", p, err)
	}
	if f.Format != cacheFormat {
		return nil, fmt.Errorf("read cache file %s: format %q, want %q: %w", p, f.Format, cacheFormat, vault.ErrBadCacheMAC)
	}
	if err := mk.VerifyCacheMAC(appName, envName, f.Entry, f.MAC); err != nil {
		return nil, fmt.Errorf("read cache file %s: %w", p, err)
	}
	var e cacheEntry
	if err := json.Unmarshal(f.Entry, &e); err != nil {
		return nil, fmt.Errorf("read cache file %s: %v", p, err)
	}
	return &e, nil
}

// forget removes everything cached for a machine key.
func (c *Cache) forget(mk *vault.MachineKey) {
	id := mk.ID()
	_ = os.RemoveAll(filepath.Join(c.Dir, "machine-"+hex.EncodeToString(id[:])))
}
