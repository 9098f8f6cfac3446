// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// A cache file is cacheMagic ‖ entry ‖ MAC: the entry's exact bytes (encodeEntry) and their MAC under
// a key only the machine key derives (vault.MachineKey.CacheMAC), which covers the fetch time, the
// (app, env) and the machine. A file whose MAC fails (altered, written without the key, or of an
// older format) is not used. The format is binary, not JSON: `ov run` decodes it at every start.
const cacheMagic = "ov-machine-cache/3\n"

// cacheRefresh bounds how stale a cached fetch time may be: an online read whose answer equals the
// cached one does not rewrite the file (and fsync it) unless the cached time is older than this. The
// cached age can so overstate the real one by at most cacheRefresh, which only makes --max-age refuse
// sooner, never later.
const cacheRefresh = time.Minute

// fetchedLayout is the fetch time at the head of an entry: UTC, fixed width.
const fetchedLayout = "2006-01-02T15:04:05.000000000Z"

type cacheEntry struct {
	FetchedAt time.Time
	Self      api.MachineSelf
	AppID     string
	EnvID     string
	Env       api.EnvState
}

func (c *Cache) path(mk *vault.MachineKey, appName, envName string) string {
	id := mk.ID()
	h := sha256.Sum256([]byte(appName + "\x00" + envName))
	return filepath.Join(c.Dir, "machine-"+hex.EncodeToString(id[:]), hex.EncodeToString(h[:12])+".cache")
}

// save writes e, unless the file already holds the same answer fetched less than cacheRefresh ago.
func (c *Cache) save(mk *vault.MachineKey, appName, envName string, e *cacheEntry) error {
	p := c.path(mk, appName, envName)
	entry, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	if old, err := c.loadEntry(mk, appName, envName, p); err == nil {
		fetched, ferr := time.Parse(fetchedLayout, string(old[:len(fetchedLayout)]))
		age := e.FetchedAt.Sub(fetched)
		if ferr == nil && age >= 0 && age < cacheRefresh && bytes.Equal(old[len(fetchedLayout):], entry[len(fetchedLayout):]) {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	mac := mk.CacheMAC(appName, envName, entry)
	b := make([]byte, 0, len(cacheMagic)+len(entry)+len(mac))
	b = append(append(append(b, cacheMagic...), entry...), mac[:]...)
	if err := credentials.WriteFileAtomic(p, b, 0o600); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	// The JSON file of format 2 for the same (app, env) is no longer read: drop it.
	_ = os.Remove(strings.TrimSuffix(p, ".cache") + ".json")
	return nil
}

// loadEntry reads the file at p and returns its entry once its MAC verifies.
func (c *Cache) loadEntry(mk *vault.MachineKey, appName, envName, p string) ([]byte, error) {
	// Ciphertext and signed data only: ordinary memory, but the checks of a secret file.
	b, err := credentials.ReadPrivateFile(p, credentials.ReadOptions{MaxSize: 64 << 20, What: "cache file"})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w for %s/%s in %s", ErrNoCache, appName, envName, c.Dir)
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, []byte(cacheMagic)) || len(b) < len(cacheMagic)+len(fetchedLayout)+sha256.Size {
		return nil, fmt.Errorf("read cache file %s: not of format %q: %w", p, cacheMagic[:len(cacheMagic)-1], vault.ErrBadCacheMAC)
	}
	entry, mac := b[len(cacheMagic):len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if err := mk.VerifyCacheMAC(appName, envName, entry, mac); err != nil {
		return nil, fmt.Errorf("read cache file %s: %w", p, err)
	}
	return entry, nil
}

func (c *Cache) load(mk *vault.MachineKey, appName, envName string) (*cacheEntry, error) {
	p := c.path(mk, appName, envName)
	entry, err := c.loadEntry(mk, appName, envName, p)
	if err != nil {
		return nil, err
	}
	e, err := decodeEntry(entry)
	if err != nil {
		return nil, fmt.Errorf("read cache file %s: %w", p, err)
	}
	return e, nil
}

// forget removes everything cached for a machine key.
func (c *Cache) forget(mk *vault.MachineKey) {
	id := mk.ID()
	_ = os.RemoveAll(filepath.Join(c.Dir, "machine-"+hex.EncodeToString(id[:])))
}

// encodeEntry encodes e: the fetch time (fetchedLayout), then every field in a fixed order, byte
// strings and strings with a uvarint length, integers as uvarints, times as time.MarshalBinary.
func encodeEntry(e *cacheEntry) ([]byte, error) {
	b := make([]byte, 0, 1024+envSize(&e.Env))
	b = e.FetchedAt.UTC().AppendFormat(b, fetchedLayout)
	if len(b) != len(fetchedLayout) {
		return nil, fmt.Errorf("encode fetch time %v: outside years 0000-9999", e.FetchedAt)
	}
	s := &e.Self
	b = appendStr(b, s.AccountID)
	b = appendStr(b, s.MachineID)
	b = appendBytes(b, s.Pin.SignPub)
	b = appendBytes(b, s.Pin.MAC)
	b = appendBytes(b, s.Grant)
	b = appendBytes(b, s.GrantSig)
	b = appendBytes(b, s.AccountWrap)
	b = binary.AppendUvarint(b, uint64(s.AKVersion))
	b = appendStr(b, e.AppID)
	b = appendStr(b, e.EnvID)
	st := &e.Env
	b = appendStr(b, st.AppID)
	b = appendStr(b, st.AppName)
	b = appendStr(b, st.EnvID)
	b = appendStr(b, st.EnvName)
	b = binary.AppendUvarint(b, uint64(st.Epoch))
	b = appendBytes(b, st.WrappedEK)
	b = appendBytes(b, st.MachineWrap)
	b = binary.AppendUvarint(b, st.Seq)
	b = appendBytes(b, st.Manifest)
	b = appendBytes(b, st.ManifestSig)
	b = appendBytes(b, st.Access)
	b = appendBytes(b, st.AccessSig)
	b = binary.AppendUvarint(b, uint64(len(st.Records)))
	for i := range st.Records {
		r := &st.Records[i]
		b = appendBytes(b, r.Blind)
		b = binary.AppendUvarint(b, r.Version)
		b = appendBytes(b, r.Record)
	}
	ub, err := st.UpdatedAt.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode update time: %w", err)
	}
	return appendBytes(b, ub), nil
}

func envSize(st *api.EnvState) int {
	n := len(st.Manifest) + len(st.Access) + len(st.WrappedEK) + len(st.MachineWrap)
	for i := range st.Records {
		n += len(st.Records[i].Blind) + len(st.Records[i].Record) + 16
	}
	return n
}

func appendBytes(b, v []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(v))), v...) }
func appendStr(b []byte, v string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// entryDecoder reads encodeEntry's fields; the first error sticks. Byte strings alias the input.
type entryDecoder struct {
	b   []byte
	err error
}

var errBadEntry = errors.New("malformed cache entry")

func (d *entryDecoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.err = errBadEntry
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) bytes() []byte {
	n := d.uvarint(uint64(len(d.b)))
	if d.err == nil && n > uint64(len(d.b)) { // the length itself took some of len(d.b)
		d.err = errBadEntry
	}
	if d.err != nil || n == 0 {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) str() string { return string(d.bytes()) }

func decodeEntry(b []byte) (*cacheEntry, error) {
	if len(b) < len(fetchedLayout) {
		return nil, errBadEntry
	}
	fetched, err := time.Parse(fetchedLayout, string(b[:len(fetchedLayout)]))
	if err != nil {
		return nil, fmt.Errorf("%w: fetch time: %v", errBadEntry, err)
	}
	e := &cacheEntry{FetchedAt: fetched}
	d := &entryDecoder{b: b[len(fetchedLayout):]}
	s := &e.Self
	s.AccountID = d.str()
	s.MachineID = d.str()
	s.Pin.SignPub = d.bytes()
	s.Pin.MAC = d.bytes()
	s.Grant = d.bytes()
	s.GrantSig = d.bytes()
	s.AccountWrap = d.bytes()
	s.AKVersion = uint32(d.uvarint(1<<32 - 1))
	e.AppID = d.str()
	e.EnvID = d.str()
	st := &e.Env
	st.AppID = d.str()
	st.AppName = d.str()
	st.EnvID = d.str()
	st.EnvName = d.str()
	st.Epoch = uint32(d.uvarint(1<<32 - 1))
	st.WrappedEK = d.bytes()
	st.MachineWrap = d.bytes()
	st.Seq = d.uvarint(1<<64 - 1)
	st.Manifest = d.bytes()
	st.ManifestSig = d.bytes()
	st.Access = d.bytes()
	st.AccessSig = d.bytes()
	n := d.uvarint(uint64(len(d.b)) / 3) // a record takes at least 3 bytes
	st.Records = make([]api.Record, n)
	for i := range st.Records {
		r := &st.Records[i]
		r.Blind = d.bytes()
		r.Version = d.uvarint(1<<64 - 1)
		r.Record = d.bytes()
	}
	ub := d.bytes()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left over", errBadEntry, len(d.b))
	}
	if err := st.UpdatedAt.UnmarshalBinary(ub); err != nil {
		return nil, fmt.Errorf("%w: update time: %v", errBadEntry, err)
	}
	return e, nil
}
