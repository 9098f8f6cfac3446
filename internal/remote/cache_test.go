// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

// The binary entry keeps every field, byte for byte.
func TestCacheEntryRoundTrip(t *testing.T) {
	e := &cacheEntry{
		FetchedAt: time.Date(2026, 12, 4, 19, 0, 1, 123456789, time.UTC),
		Self: api.MachineSelf{AccountID: "aa", MachineID: "bb", Pin: api.MachinePin{SignPub: []byte{1, 2}, MAC: []byte{3}},
			Grant: []byte("grant"), GrantSig: []byte("sig"), AccountWrap: []byte("wrap"), AKVersion: 7},
		AppID: "app", EnvID: "env",
		Env: api.EnvState{AppID: "a", AppName: "myapp", EnvID: "e", EnvName: "production", Epoch: 3, WrappedEK: []byte{9},
			MachineWrap: []byte{8, 8}, Seq: 1 << 40, Manifest: []byte("m"), ManifestSig: []byte("ms"), Access: []byte("acc"),
			AccessSig: []byte("as"), Records: []api.Record{{Blind: []byte{1}, Version: 2, Record: []byte("r1")}, {Blind: []byte{4}, Version: 5, Record: []byte("r2")}},
			UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
	}
	b, err := encodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	// Every truncation and a trailing byte are refused, never read as a shorter entry.
	for n := 0; n < len(b); n++ {
		if _, err := decodeEntry(b[:n]); err == nil {
			t.Fatalf("a truncation to %d of %d bytes decoded", n, len(b))
		}
	}
	if _, err := decodeEntry(append(b, 0)); !errors.Is(err, errBadEntry) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// An online read whose answer did not change leaves the cache file alone (no rewrite, no fsync);
// a changed answer, or a cached fetch time older than cacheRefresh, rewrites it.
func TestCacheNotRewrittenWhenUnchanged(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	first := f.machineReader(m.Key)
	now := time.Now()
	// A cache file of the previous format (JSON) for the same (app, env) goes at the first write.
	legacy := strings.TrimSuffix(first.Cache.path(m.Key, "myapp", "production"), ".cache") + ".json"
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, []byte(`{"format":"ov-machine-cache/2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each read by a new reader, as each `ov run` is a new process.
	read := func(at time.Time, want string) os.FileInfo {
		t.Helper()
		r := &MachineReader{Client: first.Client, Key: first.Key, HighWater: first.HighWater, Cache: first.Cache, Now: func() time.Time { return at }}
		if got, err := readValue(t, r, "myapp", "production", "DB"); err != nil || got != want {
			t.Fatalf("read: %q, %v; want %q", got, err, want)
		}
		fi, err := os.Stat(r.Cache.path(m.Key, "myapp", "production"))
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	fi0 := read(now, "v1")
	if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the format 2 file is still there: %v", err)
	}
	if fi := read(now.Add(cacheRefresh/2), "v1"); !os.SameFile(fi0, fi) {
		t.Fatal("an unchanged answer rewrote the cache file")
	}
	ce, err := first.Cache.load(m.Key, "myapp", "production")
	if err != nil || !ce.FetchedAt.Equal(now) {
		t.Fatalf("cached fetch time %v, %v; want %v", ce.FetchedAt, err, now)
	}
	fi1 := read(now.Add(cacheRefresh+time.Second), "v1")
	if os.SameFile(fi0, fi1) {
		t.Fatal("a cached fetch time older than cacheRefresh was kept")
	}
	if ce, err := first.Cache.load(m.Key, "myapp", "production"); err != nil || !ce.FetchedAt.Equal(now.Add(cacheRefresh+time.Second)) {
		t.Fatalf("cached fetch time %v, %v", ce.FetchedAt, err)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	fi2 := read(now.Add(cacheRefresh+2*time.Second), "v2")
	if os.SameFile(fi1, fi2) {
		t.Fatal("a changed answer did not rewrite the cache file")
	}
	// The offline copy is the new answer.
	off := &MachineReader{Key: first.Key, HighWater: first.HighWater, Cache: first.Cache, Offline: true}
	if got, err := readValue(t, off, "myapp", "production", "DB"); err != nil || got != "v2" {
		t.Fatalf("offline: %q, %v", got, err)
	}
}
