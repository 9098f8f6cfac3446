// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/opaquevault/opaquevault/internal/store"
)

// Answers from memory, when the store has a change feed (store.ChangeFeed: pgstore through
// LISTEN/NOTIFY and triggers; sqlitestore through a trigger-written change log that it reads at
// every Current, a statement much cheaper than the reads it replaces). Without one, every read
// checks the database, as envcache.go says. With one, while the feed is current (store.Feed.Current: every write
// committed more than store.FeedBound ago has been reported), a machine found in the machine
// cache is taken as live without MachineLive, and an environment's head (seq, manifest
// signature, the caller machine's wrap, the epoch's signed allowed set) comes from the head cache
// without EnvHead: the `ov run --machine-key` pair then costs no query.
//
// Every change the feed reports drops what it names (an env's heads and answer; a machine and its
// heads; an account's heads and machines), and ChangeAll drops everything. An entry is stored only
// if no change was reported since before the read that made it (the generation check), so a read
// that raced a change cannot bring back what the change dropped. The instance that writes waits
// for its own feed to have reported the write before answering the writer (syncWriter), so the
// writer reads what it wrote from this instance at once; other instances follow within the
// feed's latency (normally well under a millisecond), and never later than store.FeedBound, after
// which they stop trusting memory. docs/self-hosting.md says why that is acceptable.

// maxCachedHeads bounds the head cache (entries: env × machine); past it, it starts over.
const maxCachedHeads = 100_000

type cachedHead struct {
	verifier []byte // the machine verifier the head was read with (its MachineLive); nil for none
	h        *store.EnvHead
}

// headCache keeps env heads by env, then by caller machine ("" for a device).
type headCache struct {
	gen *atomic.Uint64
	mu  sync.RWMutex
	m   map[string]map[string]cachedHead
	n   int
}

func (c *headCache) get(envID, machineID, verifier []byte) *store.EnvHead {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[string(envID)][string(machineID)]
	if !ok || !bytes.Equal(e.verifier, verifier) {
		return nil
	}
	return e.h
}

func (c *headCache) put(gen uint64, envID, machineID, verifier []byte, h *store.EnvHead) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.m == nil || c.n >= maxCachedHeads {
		c.m, c.n = map[string]map[string]cachedHead{}, 0
	}
	byMachine := c.m[string(envID)]
	if byMachine == nil {
		byMachine = map[string]cachedHead{}
		c.m[string(envID)] = byMachine
	}
	if _, ok := byMachine[string(machineID)]; !ok {
		c.n++
	}
	byMachine[string(machineID)] = cachedHead{verifier: verifier, h: h}
}

// drop forgets the heads that match: every head of envID, of machineID, or of accountID.
func (c *headCache) drop(ch store.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ch.Kind {
	case store.ChangeEnv:
		c.n -= len(c.m[string(ch.ID)])
		delete(c.m, string(ch.ID))
	case store.ChangeMachine:
		for env, byMachine := range c.m {
			if _, ok := byMachine[string(ch.ID)]; ok {
				delete(byMachine, string(ch.ID))
				c.n--
				if len(byMachine) == 0 {
					delete(c.m, env)
				}
			}
		}
	case store.ChangeAccount:
		for env, byMachine := range c.m {
			for _, e := range byMachine {
				if bytes.Equal(e.h.AccountID, ch.ID) {
					c.n -= len(byMachine)
					delete(c.m, env)
				}
				break // every head of one env names the same account
			}
		}
	default:
		c.m, c.n = nil, 0
	}
}

// startFeed starts the store's change feed, when it has one.
func (s *Server) startFeed(ctx context.Context) error {
	cf, ok := s.st.(store.ChangeFeed)
	if !ok {
		return nil
	}
	f, err := cf.StartFeed(ctx, s.changed)
	if err != nil {
		return err
	}
	s.feed = f
	return nil
}

// feedCurrent reports whether memory may answer without the database.
func (s *Server) feedCurrent() bool { return s.feed != nil && s.feed.Current() }

// changed is the feed's callback: it forgets what ch names.
func (s *Server) changed(ch store.Change) {
	if ch.Kind == store.ChangeAll {
		s.metrics.feedFlushes.Inc()
	} else {
		s.metrics.feedChanges.Inc()
	}
	s.forget(ch)
}

// forget drops what ch names from memory. The handlers of a commit and of a machine's revocation
// call it themselves before answering, besides waiting for the feed (syncWriter).
func (s *Server) forget(ch store.Change) {
	// The generation goes up before anything is dropped: a put that checks it after this cannot
	// store, and a put that checked it before stored under the lock that drop then takes.
	s.gen.Add(1)
	s.heads.drop(ch)
	switch ch.Kind {
	case store.ChangeEnv:
		s.envs.drop(ch.ID)
	case store.ChangeMachine:
		s.machines.drop(ch.ID)
	case store.ChangeAccount:
		s.machines.dropAccount(ch.ID)
		s.envs.dropAccount(ch.ID)
	default:
		s.machines.clear()
		s.envs.clear()
	}
}

// envHead is store.EnvHead, from the head cache while the feed is current.
func (s *Server) envHead(ctx context.Context, envID, machineID, verifier []byte) (*store.EnvHead, error) {
	if !s.feedCurrent() {
		s.metrics.headBypass.Inc()
		return s.st.EnvHead(pointCtx(ctx), envID, machineID, verifier)
	}
	if h := s.heads.get(envID, machineID, verifier); h != nil {
		s.metrics.headHit.Inc()
		return h, nil
	}
	s.metrics.headMiss.Inc()
	gen := s.gen.Load()
	h, err := s.st.EnvHead(pointCtx(ctx), envID, machineID, verifier)
	if err == nil {
		s.heads.put(gen, envID, machineID, verifier, h)
	}
	return h, err
}

// syncWriter holds the answer to a write until the instance's own feed has reported the write,
// so that the writer's next read from this instance sees it.
type syncWriter struct {
	http.ResponseWriter
	s      *Server
	ctx    context.Context
	synced bool
}

// sync waits for the feed before a successful answer; a refusal changed nothing, and waiting
// for it would let a flood of refused requests cost a notification each.
func (w *syncWriter) sync(code int) {
	if !w.synced {
		w.synced = true
		if code < 400 {
			w.s.feed.Sync(w.ctx)
		}
	}
}

func (w *syncWriter) WriteHeader(code int) {
	w.sync(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.sync(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *syncWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
