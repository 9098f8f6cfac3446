// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/opaquevault/opaquevault/credentials"
)

// HighWater is the rollback floor of each environment this client has verified: the highest manifest
// seq seen, kept in a 0600 JSON file. A server that later serves an older manifest is refused.
type HighWater struct {
	path string
	mu   sync.Mutex
	m    map[string]uint64
	// Soft makes a failure to write the file a recorded warning (WriteErr) instead of an error:
	// a service whose home is read-only still starts, protected by the grant's floor.
	Soft     bool
	WriteErr error
}

// OpenHighWater loads the file at path (a missing file is an empty floor). An empty path keeps the
// floors in memory only: every Raise then records a WriteErr (see Soft).
func OpenHighWater(path string) (*HighWater, error) {
	h := &HighWater{path: path, m: map[string]uint64{}}
	if path == "" {
		return h, nil
	}
	b, err := credentials.ReadPrivateFile(path, credentials.ReadOptions{MaxSize: 16 << 20, What: "state file"})
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rollback state: %w", err)
	}
	if err := json.Unmarshal(b, &h.m); err != nil {
		return nil, fmt.Errorf("read rollback state %s: %v", path, err)
	}
	return h, nil
}

// Get returns the floor for envID (0 when unknown or h is nil).
func (h *HighWater) Get(envID string) uint64 {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[envID]
}

// Raise records seq for envID when it is higher than the floor, writing the file atomically.
func (h *HighWater) Raise(envID string, seq uint64) error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[envID] >= seq {
		return nil
	}
	h.m[envID] = seq
	if h.path == "" {
		return h.fail(errors.New("write rollback state: no state directory (no home directory and no $STATE_DIRECTORY)"))
	}
	b, err := json.Marshal(h.m)
	if err != nil {
		return fmt.Errorf("encode rollback state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return h.fail(fmt.Errorf("write rollback state: %w", err))
	}
	if err := credentials.WriteFileAtomic(h.path, b, 0o600); err != nil {
		return h.fail(fmt.Errorf("write rollback state: %w", err))
	}
	return nil
}

// ErrStateUnsaved means the rollback state could not be written: without Soft, the read fails
// rather than go on without a floor it could keep.
var ErrStateUnsaved = errors.New("rollback state not saved")

func (h *HighWater) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrStateUnsaved, err)
	if h.Soft {
		h.WriteErr = err
		return nil
	}
	return err
}
