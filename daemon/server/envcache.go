// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/store"
)

// The environment cache keeps, per environment, the JSON answer of GET /v1/envs/{id} as of one
// commit. A commit changes the environment's seq and manifest signature; every read first asks the
// database for the head (seq, manifest signature, update time and the caller's machine wrap, one
// indexed statement) and uses the cached answer only when the head is the one it was made from.
// So several instances sharing one database never serve a stale environment: the check is against
// the database, not against this instance's own writes. What is cached (the signed manifest, the
// records, the wrapped key of an epoch) never changes for a given (env, seq, signature). With a
// store that has a change feed (both do), the head itself comes from memory while the feed is
// current (feed.go).

// envCacheBytes bounds the memory of the cache.
const envCacheBytes = 64 << 20

type envEntry struct {
	accountID []byte
	seq       uint64
	sig       []byte
	updated   time.Time
	epoch     uint32
	wrappedEK []byte
	// The answer without its key wrap, split where the wrap goes: head ‖ ,"wrapped_ek":… ‖ tail.
	head, tail []byte
}

func (e *envEntry) size() int { return len(e.head) + len(e.tail) + len(e.wrappedEK) + 128 }

func (e *envEntry) current(h *store.EnvHead) bool {
	return e.seq == h.Seq && e.epoch == h.Epoch && bytes.Equal(e.sig, h.ManifestSig) && e.updated.Equal(h.UpdatedAt)
}

type envCache struct {
	gen   *atomic.Uint64 // Server.gen: an entry is stored only if it did not move since its read began (feed.go)
	mu    sync.RWMutex
	m     map[string]*envEntry
	bytes int
}

func (c *envCache) get(id []byte) *envEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[string(id)]
}

func (c *envCache) put(gen uint64, id []byte, e *envEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.m == nil {
		c.m = map[string]*envEntry{}
	}
	if old := c.m[string(id)]; old != nil {
		c.bytes -= old.size()
	}
	// Past the bound, forget arbitrary entries: they are rebuilt from the database on demand.
	for k, old := range c.m {
		if c.bytes+e.size() <= envCacheBytes {
			break
		}
		c.bytes -= old.size()
		delete(c.m, k)
	}
	if e.size() > envCacheBytes {
		return
	}
	c.m[string(id)] = e
	c.bytes += e.size()
}

func (c *envCache) drop(id []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[string(id)]; old != nil {
		c.bytes -= old.size()
		delete(c.m, string(id))
	}
}

// dropAccount forgets the answers of an account's environments (an app's name is in them).
func (c *envCache) dropAccount(accountID []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if bytes.Equal(e.accountID, accountID) {
			c.bytes -= e.size()
			delete(c.m, id)
		}
	}
}

func (c *envCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.bytes = nil, 0
}

var seqMarker = []byte(`,"seq":`)

// newEnvEntry encodes the answer for the snapshot v once.
func newEnvEntry(v *store.EnvView) (*envEntry, error) {
	e := &v.Env
	out := &api.EnvState{
		AppID: hexID(e.AppID), AppName: e.AppName, EnvID: hexID(e.ID), EnvName: e.Name, Epoch: e.Epoch, Seq: e.Seq,
		Manifest: e.Manifest, ManifestSig: e.ManifestSig, Records: make([]api.Record, 0, len(v.Records)), UpdatedAt: e.UpdatedAt,
	}
	for _, rec := range v.Records {
		out.Records = append(out.Records, api.Record{Blind: rec.Blind, Version: rec.Version, Record: rec.Data})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	// Without a wrap, "epoch" is directly followed by "seq"; the strings before it (ids, names)
	// are JSON-escaped and cannot hold the marker.
	i := bytes.Index(b, seqMarker)
	if i < 0 {
		return nil, errInternal
	}
	return &envEntry{
		accountID: e.AccountID, seq: e.Seq, sig: e.ManifestSig, updated: e.UpdatedAt, epoch: e.Epoch, wrappedEK: e.WrappedEK,
		head: b[:i], tail: b[i:],
	}, nil
}

// bodyPool holds response buffers, so that an answer is assembled and written in one piece.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// write answers with the cached body, the given wrap field ("wrapped_ek" or "machine_wrap") and,
// when there is one, the epoch's signed allowed set ("access", "access_sig").
func (e *envEntry) write(w http.ResponseWriter, field string, wrap []byte, access *store.SignedObject) {
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, e.head...)
	b = appendB64Field(b, field, wrap)
	if access != nil {
		b = appendB64Field(b, "access", access.Raw)
		b = appendB64Field(b, "access_sig", access.Sig)
	}
	b = append(b, e.tail...)
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= 1<<20 {
		*bp = b
		bodyPool.Put(bp)
	}
}

// appendB64Field appends ,"name":"base64(v)" to a JSON object being built; nothing for a nil v.
func appendB64Field(b []byte, name string, v []byte) []byte {
	if v == nil {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}
