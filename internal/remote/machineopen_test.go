// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/opaquevault/opaquevault/internal/vault"
)

func TestNewMachineReader(t *testing.T) {
	mk, err := vault.ParseMachineKeyFile(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer mk.Wipe()
	dir := t.TempDir()

	r, err := NewMachineReader(mk, MachineReaderOptions{Offline: true, StateDir: dir, CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if r.Client != nil || r.MaxAge != DefaultMaxAge || r.Cache == nil || r.Cache.Dir != dir || r.HighWater.Soft {
		t.Errorf("offline reader = %+v", r)
	}
	if want := filepath.Join(dir, "machine-"+MachineIDOf(mk)+".json"); r.HighWater.path != want {
		t.Errorf("state file %q, want %q", r.HighWater.path, want)
	}

	r, err = NewMachineReader(mk, MachineReaderOptions{Server: "https://vault.example.com", MaxAge: 5, AllowUnsavedState: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Client == nil || r.MaxAge != 5 || r.Cache != nil || !r.HighWater.Soft {
		t.Errorf("online reader = %+v", r)
	}

	// Plain http to another host is refused, as a usage error the CLI can map.
	_, err = NewMachineReader(mk, MachineReaderOptions{Server: "http://vault.example.com"})
	var urlErr *ServerURLError
	if !errors.As(err, &urlErr) {
		t.Fatalf("plain http server: %v; want a *ServerURLError", err)
	}
}
