// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/secmem"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// defaultCredentialName is the credential `ov run` uses when systemd passes one of that name.
const defaultCredentialName = "ov-machine-key"

// defaultMaxAge is the default of --max-age (`ov run`, `ov agent serve`): remote.DefaultMaxAge, in
// days as a user types it.
var defaultMaxAge = fmt.Sprintf("%dd", remote.DefaultMaxAge/(24*time.Hour))

// machineFlags select a machine key and the offline behaviour of `ov run`.
type machineFlags struct {
	keyFile    string
	credential string
	offline    bool
	maxAge     string
	// allowUnsavedState: a rollback state file that cannot be written is a warning, not an error.
	allowUnsavedState bool
}

func (m *machineFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&m.keyFile, "machine-key", "", "read the machine key from this file (0600, owned by you): no password, no agent")
	fs.StringVar(&m.credential, "machine-key-credential", "", "read the machine key from $CREDENTIALS_DIRECTORY/NAME (LoadCredential=, LoadCredentialEncrypted=)")
	fs.BoolVar(&m.offline, "offline", false, "with a machine key: use the cached copy, not the server")
	fs.StringVar(&m.maxAge, "max-age", defaultMaxAge, "with a machine key: refuse a cached copy older than this when the server is unreachable")
	fs.BoolVar(&m.allowUnsavedState, "allow-unsaved-state", false, "with a machine key: when the rollback state ($STATE_DIRECTORY or ~/.local/state/ov) cannot be written, warn and go on, protected only by the grant's signed floor")
}

// machineKey loads the machine key the flags (or systemd) name; nil when there is none.
func (a *App) machineKey(mf machineFlags) (*vault.MachineKey, error) {
	var buf *secmem.Buf
	var err error
	switch {
	case mf.keyFile != "" && mf.credential != "":
		return nil, usageErr("--machine-key and --machine-key-credential exclude each other")
	case mf.keyFile != "":
		secmem.Harden()
		buf, err = credentials.ReadKeyFile(mf.keyFile, credentials.ReadOptions{})
	case mf.credential != "":
		secmem.Harden()
		buf, err = credentials.LoadWith(mf.credential, credentials.ReadOptions{Size: credentials.MachineKeySize, What: "machine key credential"})
	default:
		dir := a.env("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return nil, nil
		}
		if _, serr := os.Lstat(filepath.Join(dir, defaultCredentialName)); serr != nil {
			return nil, nil
		}
		secmem.Harden()
		buf, err = credentials.LoadWith(defaultCredentialName, credentials.ReadOptions{Size: credentials.MachineKeySize, What: "machine key credential"})
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, withCode(ExitNotFound, err)
		}
		return nil, withHints(err, "a machine key must be exactly 32 bytes, mode 0600 (or 0400), owned by the user that runs ov, one link, in a directory only root and that user can write")
	}
	defer buf.Destroy()
	mk, err := vault.ParseMachineKeyFile(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("read machine key: %w", err)
	}
	return mk, nil
}

func (a *App) readWithMachineKey(ctx context.Context, t target, mf machineFlags, mk *vault.MachineKey) (*remote.Env, error) {
	defer mk.Wipe()
	maxAge, err := parseDuration(mf.maxAge)
	if err != nil {
		return nil, usageErr("--max-age: " + err.Error())
	}
	o := remote.MachineReaderOptions{StateDir: a.machineStateDir(), CacheDir: a.cacheDir(), Offline: mf.offline, MaxAge: maxAge, AllowUnsavedState: mf.allowUnsavedState}
	if o.CacheDir == "" {
		a.warnf("no home directory and no $CACHE_DIRECTORY: nothing is cached for when the server is down")
	}
	if !mf.offline {
		if o.Server, err = a.machineServerURL(); err != nil {
			return nil, err
		}
	}
	r, err := remote.NewMachineReader(mk, o)
	if urlErr := (*remote.ServerURLError)(nil); errors.As(err, &urlErr) {
		return nil, usageErr(urlErr.Error())
	} else if err != nil {
		return nil, err
	}
	hw := r.HighWater
	env, info, err := r.Read(ctx, t.app, t.env)
	if err != nil {
		return nil, machineError(err, t)
	}
	if info.FromCache {
		age := max(time.Since(info.FetchedAt), 0).Round(time.Second)
		a.warnf("using the cached copy of %s/%s fetched %s (%s ago): %v", t.app, t.env, info.FetchedAt.UTC().Format("2006-01-02 15:04:05 UTC"), age, info.Unreachable)
	}
	if info.CacheErr != nil {
		a.warnf("could not update the offline cache: %v", info.CacheErr)
	}
	if hw.WriteErr != nil {
		a.warnf("could not save the rollback floor (%v); the grant's floor still applies", hw.WriteErr)
	}
	return env, nil
}
