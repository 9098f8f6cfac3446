// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// maxMemoScopes bounds the environments a [Memo] holds.
const maxMemoScopes = 64

// Memo keeps the last verified, decrypted state of each environment a long-running reader (the
// agent) opened, so that the same server answer is verified and decrypted once, not at every
// request. The values are held in locked memory ([secmem.Buf]); [Memo.Wipe] destroys them.
//
// An entry is found by a digest of everything its verification depended on: the exact server
// answer (ids, epoch, wraps, manifest and its signature, allowed set, every record, the update
// time), the names asked for, and what the reader trusted (account id, signing key, machine grant,
// account key wrap, grant floor). Verification is a function of those, except for the rollback floor,
// which only rises: a hit is served only when its seq is still at or above the floor; otherwise the
// answer is verified in full again (and refused as a rollback). Any other answer misses and is
// verified in full.
//
// An Env served from a Memo carries no environment key: it can be read, not written from.
type Memo struct {
	mu     sync.Mutex
	byKey  map[[sha256.Size]byte]*memoEntry
	scopes map[string][sha256.Size]byte // appName\x00envName -> its key (one state per env)
	wiped  bool
}

type memoEntry struct {
	scope                        string
	appID, envID, appName, envNm string
	epoch                        uint32
	seq                          uint64
	updatedAt                    time.Time
	names                        []string
	versions                     []uint64
	ends                         []int // end offset of each value in buf
	buf                          *secmem.Buf
}

// NewMemo returns an empty Memo.
func NewMemo() *Memo {
	return &Memo{byKey: map[[sha256.Size]byte]*memoEntry{}, scopes: map[string][sha256.Size]byte{}}
}

// Len is the number of environments held.
func (m *Memo) Len() int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey)
}

// Wipe destroys every held value; the Memo stays empty afterwards (later stores are dropped).
func (m *Memo) Wipe() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.byKey {
		e.buf.Destroy()
		delete(m.byKey, k)
	}
	clear(m.scopes)
	m.wiped = true
}

// get returns a copy of the entry for key whose seq is at least floor.
func (m *Memo) get(key [sha256.Size]byte, floor uint64) (*Env, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok || e.seq < floor || (e.seq == 0 && floor > 0) {
		return nil, false
	}
	vals := e.buf.Bytes()
	if vals == nil {
		return nil, false
	}
	out := &Env{AppID: e.appID, EnvID: e.envID, AppName: e.appName, EnvName: e.envNm, Epoch: e.epoch, Seq: e.seq, UpdatedAt: e.updatedAt}
	var slab []byte // one copy of every value, which the caller's Env.Wipe clears
	if len(e.ends) > 0 {
		n := e.ends[len(e.ends)-1]
		slab = make([]byte, n)
		copy(slab, vals[:n])
	}
	out.Secrets = make([]Secret, len(e.names))
	start := 0
	for i, name := range e.names {
		end := e.ends[i]
		out.Secrets[i] = Secret{Name: name, Version: e.versions[i], Value: slab[start:end:end]}
		start = end
	}
	return out, true
}

// put keeps a copy of e's values under key, replacing what was held for the same environment.
func (m *Memo) put(key [sha256.Size]byte, e *Env) {
	n := 0
	for _, s := range e.Secrets {
		n += len(s.Value)
	}
	buf, err := secmem.New(max(n, 1))
	if err != nil {
		return // not kept: the next request verifies again
	}
	ent := &memoEntry{
		scope: e.AppName + "\x00" + e.EnvName, appID: e.AppID, envID: e.EnvID, appName: e.AppName, envNm: e.EnvName,
		epoch: e.Epoch, seq: e.Seq, updatedAt: e.UpdatedAt, buf: buf,
		names: make([]string, len(e.Secrets)), versions: make([]uint64, len(e.Secrets)), ends: make([]int, len(e.Secrets)),
	}
	b, off := buf.Bytes(), 0
	for i, s := range e.Secrets {
		off += copy(b[off:], s.Value)
		ent.names[i], ent.versions[i], ent.ends[i] = s.Name, s.Version, off
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wiped {
		buf.Destroy()
		return
	}
	if old, ok := m.scopes[ent.scope]; ok {
		if oe := m.byKey[old]; oe != nil {
			oe.buf.Destroy()
		}
		delete(m.byKey, old)
	}
	if len(m.byKey) >= maxMemoScopes {
		for k, oe := range m.byKey { // evict any one
			oe.buf.Destroy()
			delete(m.byKey, k)
			delete(m.scopes, oe.scope)
			break
		}
	}
	if oe := m.byKey[key]; oe != nil {
		oe.buf.Destroy()
	}
	m.byKey[key] = ent
	m.scopes[ent.scope] = key
}

// memoKey digests what verifying st for (appName, envName, appID, envID) depends on, besides the
// rollback floor.
func (c checker) memoKey(appName, envName, appID, envID string, st *api.EnvState) [sha256.Size]byte {
	h := sha256.New()
	w := func(b []byte) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	ws := func(s string) { w([]byte(s)) }
	u := func(v uint64) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], v)
		h.Write(l[:])
	}
	ws("ov/v1/agent-memo")
	w(c.accountID)
	w(c.signPub)
	u(c.floor)
	if c.machine != nil {
		id := c.machine.ID()
		w(id[:])
	} else {
		w(nil)
	}
	w(c.grantRaw)
	w(c.wrapTag)
	for _, s := range []string{appName, envName, appID, envID, st.AppID, st.EnvID, st.AppName, st.EnvName} {
		ws(s)
	}
	u(uint64(st.Epoch))
	u(st.Seq)
	for _, b := range [][]byte{st.WrappedEK, st.MachineWrap, st.Manifest, st.ManifestSig, st.Access, st.AccessSig} {
		w(b)
	}
	u(uint64(len(st.Records)))
	for _, r := range st.Records {
		w(r.Blind)
		w(r.Record)
	}
	t, _ := st.UpdatedAt.MarshalBinary()
	w(t)
	return sum(h)
}

func sum(h hash.Hash) (k [sha256.Size]byte) {
	h.Sum(k[:0])
	return k
}

// openMemo is c.open through memo (nil: none): a state verified before, under the same trust and
// still at or above the rollback floor, is served from memory; anything else is verified in full and
// kept.
func (c checker) openMemo(memo *Memo, appName, envName, appID, envID string, st *api.EnvState, ekFor ekSource) (*Env, error) {
	if memo == nil {
		return c.open(appName, envName, appID, envID, st, ekFor)
	}
	key := c.memoKey(appName, envName, appID, envID, st)
	if e, ok := memo.get(key, max(c.hw.Get(envID), c.floor)); ok {
		return e, nil
	}
	e, err := c.open(appName, envName, appID, envID, st, ekFor)
	if err != nil {
		return nil, err
	}
	memo.put(key, e)
	return e, nil
}
