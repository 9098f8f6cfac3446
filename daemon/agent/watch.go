// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/remote"
)

// EnvWatcher is an optional interface of a [Source] whose server can be watched: WatchEnv waits
// (a long poll) until envID's committed seq exceeds after, and returns the new seq and true, or
// false when the wait ended without a commit. It must not use the key: the agent calls it without
// holding the key lock, so that LOCK is not delayed by a long poll. Its answer is only a hint to
// read the env again; what changed is learned from the verified manifest alone.
type EnvWatcher interface {
	WatchEnv(ctx context.Context, envID string, after uint64) (uint64, bool, error)
}

// WatchConfig configures [Watch].
type WatchConfig struct {
	// Policies say which units to restart for which names.
	Policies []RestartPolicy
	// Units restarts them.
	Units UnitManager
	// Read fetches, verifies and decrypts an env with the key held now; the watcher keeps only
	// names, versions, ids and the seq, and wipes the rest at once.
	Read func(ctx context.Context, app, env string) (*remote.Env, error)
	// Watch is the long poll ([EnvWatcher]).
	Watch func(ctx context.Context, envID string, after uint64) (uint64, bool, error)
	// Log receives one entry per action, with the unit, the names and their new versions.
	Log *logrus.Entry
	// MaxBackoff bounds the wait between failed attempts (default 30 s).
	MaxBackoff time.Duration
}

// Watch watches the envs the policies name and restarts their units, one after another, when a
// name a unit's policy lists changes in the env's verified manifest. It returns when ctx is done.
func Watch(ctx context.Context, cfg WatchConfig) {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	r := newRestarter(cfg.Units, cfg.Log)
	byScope := map[[2]string][]RestartPolicy{}
	for _, p := range cfg.Policies {
		k := [2]string{p.App, p.Env}
		byScope[k] = append(byScope[k], p)
	}
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	for k, ps := range byScope {
		go watchScope(ctx, cfg, r, k[0], k[1], ps)
	}
	<-done
}

// versions is what the watcher keeps of a verified env.
type versions struct {
	envID string
	seq   uint64
	v     map[string]uint64
}

func readVersions(ctx context.Context, cfg WatchConfig, app, env string) (*versions, error) {
	e, err := cfg.Read(ctx, app, env)
	if err != nil {
		return nil, err
	}
	defer e.Wipe()
	out := &versions{envID: e.EnvID, seq: e.Seq, v: make(map[string]uint64, len(e.Secrets))}
	for _, s := range e.Secrets {
		out.v[s.Name] = s.Version
	}
	return out, nil
}

// diff lists the names whose version differs between old and cur (0: deleted), sorted.
func diff(old, cur *versions) []SecretChange {
	var out []SecretChange
	for n, v := range cur.v {
		if old.v[n] != v {
			out = append(out, SecretChange{Name: n, Version: v})
		}
	}
	for n := range old.v {
		if _, ok := cur.v[n]; !ok {
			out = append(out, SecretChange{Name: n})
		}
	}
	slices.SortFunc(out, func(a, b SecretChange) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// watchScope follows one env until ctx is done.
func watchScope(ctx context.Context, cfg WatchConfig, r *restarter, app, env string, ps []RestartPolicy) {
	units := make([]string, len(ps))
	for i, p := range ps {
		units[i] = p.Unit
	}
	log := cfg.Log.WithFields(logrus.Fields{"app": app, "env": env})
	var base *versions
	var fails int
	failing := false
	sleep := func() bool {
		fails++
		d := min(time.Second<<min(fails-1, 5), cfg.MaxBackoff)
		d = d/2 + rand.N(d/2+1)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	fail := func(what string, err error) bool {
		if !failing {
			log.WithError(err).Warn(what + "; retrying")
			failing = true
		}
		return sleep()
	}
	for ctx.Err() == nil {
		if base == nil {
			v, err := readVersions(ctx, cfg, app, env)
			if err != nil {
				if !fail("cannot read the env to watch", err) {
					return
				}
				continue
			}
			base = v
			if failing {
				log.Info("watch resumed")
			}
			failing, fails = false, 0
			log.WithFields(logrus.Fields{"seq": base.seq, "units": strings.Join(units, ",")}).Info("watching for changes")
			continue
		}
		asked := time.Now()
		seq, changed, err := cfg.Watch(ctx, base.envID, base.seq)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !fail("watch failed", err) {
				return
			}
			continue
		}
		if failing {
			log.WithField("seq", base.seq).Info("watch resumed")
			failing, fails = false, 0
		}
		if !changed {
			// A server that answers "no change" at once (shutting down, or misbehaving) is asked
			// again only after a pause: never a busy loop.
			if time.Since(asked) < time.Second && !sleep() {
				return
			}
			continue
		}
		cur, err := readVersions(ctx, cfg, app, env)
		if err != nil {
			// A change the verified read does not confirm triggers nothing: a server cannot restart
			// units with data it made up.
			log.WithError(err).WithField("claimed_seq", seq).Warn("the server reported a change that does not verify; nothing restarted")
			if !sleep() {
				return
			}
			continue
		}
		if cur.envID != base.envID || cur.seq <= base.seq {
			// The verified env did not move (or is another env of the same name): no restart.
			log.WithFields(logrus.Fields{"claimed_seq": seq, "seq": cur.seq}).Warn("the server reported a change that the verified env does not show; nothing restarted")
			if cur.envID != base.envID {
				base = cur
			}
			if !sleep() {
				return
			}
			continue
		}
		cs := diff(base, cur)
		base = cur
		fails = 0
		act(log, r, cur.seq, cs, ps)
	}
}

// act queues the restarts that changes call for and logs those it does not.
func act(log *logrus.Entry, r *restarter, seq uint64, cs []SecretChange, ps []RestartPolicy) {
	all := names(cs)
	log = log.WithFields(logrus.Fields{"seq": seq, "secrets": all})
	if len(cs) == 0 {
		log.Info("env committed without a change of versions; nothing restarted")
		return
	}
	// Queued together, so that the rolling order holds: queued one by one, the runner could start
	// the first unit queued before a unit with a lower order is.
	var qs []queuedRestart
	for _, p := range ps {
		var mine []SecretChange
		for _, c := range cs {
			if p.Uses(c.Name) {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			log.WithField("unit", p.Unit).Info("secrets changed that the unit's policy does not list; not restarted")
			continue
		}
		qs = append(qs, queuedRestart{p: p, changes: mine})
	}
	r.queue(seq, qs...)
}

func names(cs []SecretChange) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ",")
}

// errNoWatch means the key's source cannot watch its server.
var errNoWatch = errors.New("this key's source cannot watch the server")

// startRestarts loads the restart policies and runs [Watch] with the agent's key until ctx is done.
func (a *agentState) startRestarts(ctx context.Context) {
	ps, errs := LoadRestartPolicies(a.cfg.RestartDir)
	for _, err := range errs {
		a.log.WithError(err).Error("restart policy refused")
	}
	var keep []RestartPolicy
	for _, p := range ps {
		if a.cfg.App != "" && (p.App != a.cfg.App || p.Env != a.cfg.Env) {
			a.log.WithFields(logrus.Fields{"unit": p.Unit, "app": p.App, "env": p.Env}).Warn("restart policy for a scope this agent does not serve; ignored")
			continue
		}
		keep = append(keep, p)
	}
	if len(keep) == 0 {
		a.log.WithField("dir", a.cfg.RestartDir).Info("no restart policies")
		return
	}
	units := a.cfg.Units
	if units == nil {
		m, err := connectUnits(ctx)
		if err != nil {
			a.log.WithError(err).Error("cannot reach systemd; units will not be restarted")
			return
		}
		defer m.Close()
		units = m
	}
	Watch(ctx, WatchConfig{Policies: keep, Units: units, Log: a.log.WithField("what", "restart"), Read: a.readEnv, Watch: a.watchEnv})
}

// readEnv reads an env with the key held now, for the watcher.
func (a *agentState) readEnv(ctx context.Context, app, env string) (*remote.Env, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	if a.key == nil || a.src == nil {
		return nil, errors.New("read env: agent is locked")
	}
	if a.key.Kind == KeyScoped && !hasScope(a.key, app, env) {
		return nil, fmt.Errorf("read env: agent is not unlocked for %s/%s", app, env)
	}
	return a.src.Read(ctx, app, env)
}

// watchEnv long-polls through the Source held now, without holding the key lock.
func (a *agentState) watchEnv(ctx context.Context, envID string, after uint64) (uint64, bool, error) {
	a.keyMu.RLock()
	src := a.src
	a.keyMu.RUnlock()
	if src == nil {
		return after, false, errors.New("watch env: agent is locked")
	}
	w, ok := src.(EnvWatcher)
	if !ok {
		return after, false, errNoWatch
	}
	return w.WatchEnv(ctx, envID, after)
}
