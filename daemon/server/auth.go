// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// touchEvery throttles the last-used and last-seen writes: at most one per key per interval.
const touchEvery = time.Minute

// principal is who a request authenticated as: a device key or a machine key.
type principal struct {
	device  *store.Device
	machine *store.Machine
}

func (p *principal) accountID() []byte {
	if p.device != nil {
		return p.device.AccountID
	}
	return p.machine.AccountID
}

// actor names the principal in audit entries, logs and rate-limit keys.
func (p *principal) actor() string {
	if p.device != nil {
		return "device:" + hexID(p.device.KeyID)
	}
	return "machine:" + hexID(p.machine.ID)
}

func (rc *reqCtx) actor() string {
	switch {
	case rc.p != nil:
		return rc.p.actor()
	case rc.claimed != "":
		return rc.claimed
	}
	return "anonymous"
}

// loadAccount returns the caller's account, read once per request.
func (s *Server) loadAccount(ctx context.Context, rc *reqCtx) (*store.Account, error) {
	if rc.account != nil {
		return rc.account, nil
	}
	a, err := s.st.Account(ctx, rc.accountID)
	if err != nil {
		return nil, err
	}
	rc.account = a
	return a, nil
}

// authenticate checks the bearer token of r. A failure is charged to the client's address, so
// that guessing is rate limited like the other unauthenticated calls.
func (s *Server) authenticate(r *http.Request, rc *reqCtx) (*principal, error) {
	p, err := s.credential(r, rc)
	if err == nil {
		return p, nil
	}
	if ae := asAPIError(err); ae != nil && ae.status == http.StatusUnauthorized {
		if ok, wait := s.ipLim.allow(clientKey(r), s.now()); !ok {
			s.metrics.limited("ip")
			return nil, rateLimited(wait)
		}
	}
	return nil, err
}

func (s *Server) credential(r *http.Request, rc *reqCtx) (*principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, unauthorized("missing bearer token")
	}
	switch {
	case strings.HasPrefix(tok, envelope.APITokenPrefix):
		return s.deviceCredential(r.Context(), rc, []byte(tok))
	case strings.HasPrefix(tok, envelope.MachineTokenPrefix):
		return s.machineCredential(r, rc, []byte(tok))
	}
	return nil, unauthorized("unrecognized bearer token")
}

func (s *Server) deviceCredential(ctx context.Context, rc *reqCtx, tok []byte) (*principal, error) {
	keyID, secret, err := envelope.ParseAPIToken(tok)
	if err != nil {
		return nil, unauthorized("malformed device token")
	}
	verifier := envelope.APIKeyVerifier(&secret)
	clear(secret[:])
	d, err := s.st.Device(ctx, keyID[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("device key not recognized")
	}
	if err != nil {
		return nil, err
	}
	if !envelope.VerifierMatches(verifier, d.Verifier) {
		return nil, unauthorized("device key not recognized")
	}
	if d.Revoked() {
		// The owner sees attempts with a revoked key in the audit log.
		rc.accountID, rc.claimed = d.AccountID, "device:"+hexID(d.KeyID)
		return nil, unauthorized("device key revoked")
	}
	now := s.now()
	if now.Sub(d.LastUsedAt) >= touchEvery {
		if err := s.st.TouchDevice(ctx, d.KeyID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return &principal{device: d}, nil
}

func (s *Server) machineCredential(r *http.Request, rc *reqCtx, tok []byte) (*principal, error) {
	ctx := r.Context()
	id, auth, err := envelope.ParseMachineToken(tok)
	if err != nil {
		return nil, unauthorized("malformed machine token")
	}
	verifier := envelope.MachineVerifier(&auth)
	clear(auth[:])
	// A machine's fields never change while it exists, so they come from this instance's cache once
	// the database says that the machine (id and verifier) still exists: in the same statement
	// that reads the environment's head for an environment read (getEnv), else with MachineLive;
	// or, while the change feed is current, from the cache alone (a deletion drops the entry).
	// The feed first: a change it reports (a deletion) drops the entry before the cache is read.
	current := s.feedCurrent()
	gen := s.gen.Load()
	m := s.machines.get(id[:])
	cached := m != nil && envelope.VerifierMatches(verifier, m.Verifier)
	live := cached && current
	if cached && !live && r.Pattern != envReadPattern {
		if live, err = s.st.MachineLive(pointCtx(ctx), m.ID, m.Verifier); err != nil {
			return nil, err
		}
	}
	switch {
	case cached && live:
	case cached && r.Pattern == envReadPattern:
		rc.liveVerifier = m.Verifier
	default:
		m, err = s.st.Machine(ctx, id[:])
		if errors.Is(err, store.ErrNotFound) {
			s.machines.drop(id[:])
			return nil, unauthorized(machineUnknown)
		}
		if err != nil {
			return nil, err
		}
		if !envelope.VerifierMatches(verifier, m.Verifier) {
			return nil, unauthorized(machineUnknown)
		}
		s.machines.put(gen, m)
	}
	now := s.now()
	if !m.NotAfter.IsZero() && now.After(m.NotAfter) {
		rc.accountID, rc.claimed = m.AccountID, "machine:"+hexID(m.ID)
		return nil, unauthorized("machine key expired at %s", m.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Sub(m.LastSeenAt) >= touchEvery {
		if err := s.st.TouchMachine(ctx, m.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		seen := *m
		seen.LastSeenAt = now
		s.machines.put(gen, &seen)
	}
	return &principal{machine: m}, nil
}

const machineUnknown = "machine key not recognized by the server (revoked, corrupted, or issued by another server)"

// envReadPattern is the route whose handler checks the machine's existence itself.
const envReadPattern = "GET /v1/envs/{env_id}"

// machineCache keeps machines as last read from the store, by id. An entry is used only by a
// request that checks in the database that the machine (id and verifier) still exists, or while
// the change feed is current (feed.go), which drops the entry when the machine changes.
type machineCache struct {
	gen *atomic.Uint64 // Server.gen: an entry is stored only if it did not move since its read began (feed.go)
	mu  sync.RWMutex
	m   map[string]*store.Machine
}

const maxCachedMachines = 100_000

func (c *machineCache) get(id []byte) *store.Machine {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[string(id)]
}

func (c *machineCache) put(gen uint64, m *store.Machine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedMachines {
		c.m = map[string]*store.Machine{}
	}
	c.m[string(m.ID)] = m
}

func (c *machineCache) drop(id []byte) {
	c.mu.Lock()
	delete(c.m, string(id))
	c.mu.Unlock()
}

func (c *machineCache) dropAccount(accountID []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, m := range c.m {
		if bytes.Equal(m.AccountID, accountID) {
			delete(c.m, id)
		}
	}
}

func (c *machineCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
