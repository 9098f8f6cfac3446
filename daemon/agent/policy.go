// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/peercred"
)

// The agent's local policy after a request was answered (crypto.md §4.5):
// the lockout after repeated policy denials, the distinct-secret counter
// and the idle lock. It runs for admitted peers only (the agent's uid and
// root); other uids are refused before their request is read and count for
// none of it, or any local user could lock a service's agent at will.

// afterAnswer applies the policy to an answered request.
func (a *agentState) afterAnswer(log *logrus.Entry, peer peercred.Peer, req *localapi.Request, resp *localapi.Response) {
	if resp.Err != nil {
		// A key that did not open (UNLOCK) is not a policy denial.
		if resp.Err.Code == localapi.CodeDenied && req.Op != localapi.OpUnlock {
			a.denied(log, peer)
		}
		return
	}
	if peer.UID != a.owner {
		return
	}
	switch req.Op {
	case localapi.OpGet:
		if app, env, err := normalizeScope(req.App, req.Env); err == nil {
			a.countDistinct(log, peer.UID, app, env, req.Names)
		}
		a.used()
	case localapi.OpRun:
		if resp.Run == nil || !resp.Run.Served {
			return // locked, or another scope: nothing was read
		}
		if app, env, err := normalizeScope(req.App, req.Env); err == nil {
			a.countDistinct(log, peer.UID, app, env, secretNames(resp.Secrets))
		}
		a.used()
	case localapi.OpList, localapi.OpUnlock:
		a.used()
	}
}

// ---- lockout ----

// lockout counts policy denials in a sliding window.
type lockout struct {
	mu    sync.Mutex
	times []time.Time
}

// add records a denial at now and reports whether max were seen within
// window (and then forgets them).
func (l *lockout) add(now time.Time, max int, window time.Duration) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.times[:0]
	for _, t := range l.times {
		if now.Sub(t) < window {
			keep = append(keep, t)
		}
	}
	l.times = append(keep, now)
	n := len(l.times)
	if n >= max {
		l.times = l.times[:0]
		return n, true
	}
	return n, false
}

func (a *agentState) denied(log *logrus.Entry, peer peercred.Peer) {
	l := a.limits
	if l.LockoutDenials < 0 {
		return
	}
	n, hit := a.lockouts.add(time.Now(), l.LockoutDenials, l.LockoutWindow)
	if !hit {
		return
	}
	note := fmt.Sprintf("lockout: %d denied requests in %v", n, l.LockoutWindow)
	if a.lockWith("lockout after denied requests", note) {
		log.WithFields(logrus.Fields{"denials": n, "window": l.LockoutWindow.String()}).
			Error("locked out: too many denied requests; keys wiped")
	}
}

// ---- distinct secrets ----

type scopeKey struct {
	uid      uint32
	app, env string
}

type nameSet struct {
	start  time.Time
	names  map[string]struct{}
	warned bool
}

// distinct counts, per (uid, app, env) and window, the distinct names
// served. It keeps at most max+1 names per key: enough to see the
// threshold crossed.
type distinct struct {
	mu    sync.Mutex
	sets  map[scopeKey]*nameSet
	swept time.Time
}

// add records names and returns the distinct count and whether the count
// just went past max in this window.
func (d *distinct) add(k scopeKey, names []string, now time.Time, max int, window time.Duration) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sets == nil {
		d.sets = map[scopeKey]*nameSet{}
	}
	if now.Sub(d.swept) > window {
		d.swept = now
		for k, s := range d.sets {
			if now.Sub(s.start) >= window {
				delete(d.sets, k)
			}
		}
	}
	s := d.sets[k]
	if s == nil || now.Sub(s.start) >= window {
		s = &nameSet{start: now, names: map[string]struct{}{}}
		d.sets[k] = s
	}
	if s.warned {
		return len(s.names), false
	}
	for _, n := range names {
		s.names[n] = struct{}{}
		if len(s.names) > max {
			s.warned = true
			return len(s.names), true
		}
	}
	return len(s.names), false
}

func (a *agentState) countDistinct(log *logrus.Entry, uid uint32, app, env string, names []string) {
	l := a.limits
	if l.DistinctSecrets < 0 {
		return
	}
	n, crossed := a.distinct.add(scopeKey{uid, app, env}, names, time.Now(), l.DistinctSecrets, l.DistinctWindow)
	if crossed {
		log.WithFields(logrus.Fields{
			"app": app, "env": env, "distinct_secrets": n, "threshold": l.DistinctSecrets, "window": l.DistinctWindow.String(),
		}).Warn("many distinct secrets read by one uid in one scope")
	}
}

// ---- idle lock ----

// idleLock applies to the key held now: keys handed over by UNLOCK only.
func (a *agentState) idleLockOn(k *Key) bool {
	return a.limits.IdleLock > 0 && k != nil && k.Kind != KeyMachine
}

// used restarts the idle clock after a served LIST, GET or UNLOCK, and
// updates STATUS= when the time it shows moved by more than its precision.
func (a *agentState) used() {
	a.keyMu.RLock()
	on := a.idleLockOn(a.key)
	a.keyMu.RUnlock()
	if !on {
		return
	}
	d := a.limits.IdleLock
	now := time.Now()
	shown := a.touch(now)
	if now.Add(d).Sub(shown) >= min(time.Minute, d/10) {
		a.changed()
	}
}

// touch sets the idle clock to now, starting it when it is not running,
// and returns the deadline STATUS= showed last.
func (a *agentState) touch(now time.Time) time.Time {
	a.idleMu.Lock()
	defer a.idleMu.Unlock()
	a.lastUse = now
	if a.idleTimer == nil {
		a.idleTimer = time.AfterFunc(a.limits.IdleLock, a.idleCheck)
	}
	return a.idleShown
}

// idleDeadline is when the held key locks when idle (zero: never).
func (a *agentState) idleDeadline(k *Key) time.Time {
	if !a.idleLockOn(k) {
		return time.Time{}
	}
	a.idleMu.Lock()
	defer a.idleMu.Unlock()
	if a.lastUse.IsZero() {
		return time.Time{}
	}
	return a.lastUse.Add(a.limits.IdleLock)
}

// idleCheck runs when the idle timer fires: it locks when the key went
// unused for the interval, or waits for the rest of it.
func (a *agentState) idleCheck() {
	d := a.limits.IdleLock
	a.idleMu.Lock()
	if a.idleTimer == nil || a.lastUse.IsZero() {
		a.idleMu.Unlock()
		return
	}
	left := d - time.Since(a.lastUse)
	if left > 0 {
		a.idleTimer.Reset(left)
		a.idleMu.Unlock()
		return
	}
	a.idleTimer = nil
	a.idleMu.Unlock()
	a.lockWith("idle for "+d.String(), "idle for "+d.String())
}

// stopIdle stops the idle clock (the key was wiped or replaced).
func (a *agentState) stopIdle() {
	a.idleMu.Lock()
	defer a.idleMu.Unlock()
	if a.idleTimer != nil {
		a.idleTimer.Stop()
		a.idleTimer = nil
	}
	a.lastUse, a.idleShown = time.Time{}, time.Time{}
}
