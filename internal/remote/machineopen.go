// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"path/filepath"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// DefaultMaxAge is how old a cached copy a machine reader serves when the server is unreachable, unless
// told otherwise (`ov run --max-age`, `ov agent serve --max-age`).
const DefaultMaxAge = 30 * 24 * time.Hour

// ServerURLError means the server URL given to [NewMachineReader] cannot be used (a usage error).
type ServerURLError struct{ Err error }

func (e *ServerURLError) Error() string { return e.Err.Error() }
func (e *ServerURLError) Unwrap() error { return e.Err }

// MachineReaderOptions is everything a [MachineReader] needs besides its key. `ov run --machine-key`
// and the agent both build their reader from it with [NewMachineReader], so that they read, cache and
// keep rollback floors the same way.
type MachineReaderOptions struct {
	Server            string        // the server's URL; unused with Offline
	StateDir          string        // rollback floors (machine-<id>.json); "" keeps them in memory only
	CacheDir          string        // the offline cache; "" caches nothing
	Offline           bool          // use only the cache
	MaxAge            time.Duration // refuse a cached copy older than this; 0 means DefaultMaxAge
	AllowUnsavedState bool          // a floor that cannot be written is a warning (HighWater.Soft)
	ClientCacheTTL    time.Duration // the API client's response cache (the agent's); 0: none
}

// NewMachineReader returns the reader for mk. It does not take ownership of mk: the caller wipes it.
// Errors are a [*ServerURLError] when Server cannot be used, or come from opening the state file.
func NewMachineReader(mk *vault.MachineKey, o MachineReaderOptions) (*MachineReader, error) {
	hw, err := OpenHighWater(machineStateFile(o.StateDir, mk))
	if err != nil {
		return nil, err
	}
	hw.Soft = o.AllowUnsavedState
	r := &MachineReader{Key: mk, HighWater: hw, Offline: o.Offline, MaxAge: o.MaxAge}
	if r.MaxAge == 0 {
		r.MaxAge = DefaultMaxAge
	}
	if o.CacheDir != "" {
		r.Cache = &Cache{Dir: o.CacheDir}
	}
	if !o.Offline {
		tok := mk.Token()
		r.Client, err = api.NewClient(o.Server, api.ClientOptions{Token: string(tok), CacheTTL: o.ClientCacheTTL})
		clear(tok)
		if err != nil {
			return nil, &ServerURLError{err}
		}
	}
	return r, nil
}

// machineStateFile is where the rollback floors of mk's machine are kept under dir.
func machineStateFile(dir string, mk *vault.MachineKey) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "machine-"+MachineIDOf(mk)+".json")
}
