// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// Watching an environment: GET /v1/envs/{env_id}/watch?after=SEQ[&wait=SECONDS] is a long poll.
// It answers 200 with {"seq": N} as soon as the env's committed seq exceeds SEQ, and 204 when wait
// (default 30 s, 1 to 60) passes without one. It is authorized like the env read: the account's
// devices, and machine keys whose scope includes the env.
//
// The server learns of commits by reading the env head (store.EnvHead: one point read, or memory
// while the change feed is current, feed.go) once per WatchPoll for every waiting request, so it works unchanged with several ov-server instances on
// one database and with every store backend. The cost is bounded: at most MaxWatches requests wait
// at once (more are answered 503 overloaded and retried by the client), so at most
// MaxWatches/WatchPoll point reads a second; a commit is seen within WatchPoll. Waiting requests
// hold no overload slot (shed.go): they do no work between polls. A graceful shutdown answers them
// 204 at once, and the client asks again (of this server once it is back, or of another).

const (
	// WatchPoll is how often a waiting watch reads the env head.
	WatchPoll = time.Second
	// MaxWatches bounds the watches waiting at once on one server.
	MaxWatches = 1024
	// defaultWatchWait and maxWatchWait bound ?wait=.
	defaultWatchWait = 30 * time.Second
	maxWatchWait     = 60 * time.Second
)

// watchHub counts the waiting watches and ends them at shutdown.
type watchHub struct {
	n        atomic.Int64
	once     sync.Once
	stopping chan struct{}
	mu       sync.Mutex
}

func (h *watchHub) stop() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping == nil {
		h.stopping = make(chan struct{})
	}
	return h.stopping
}

// StopWatches answers every waiting watch at once (204), and every later one without waiting. Give
// before http.Server.Shutdown so that a graceful shutdown does not wait for long polls.
func (s *Server) StopWatches() {
	ch := s.watch.stop()
	s.watch.once.Do(func() { close(ch) })
}

// isWatch reports whether path is a watch request (exempt from the overload slots).
func isWatch(path string) bool {
	return strings.HasPrefix(path, "/v1/envs/") && strings.HasSuffix(path, "/watch")
}

func (s *Server) watchEnv(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, err := parseID("env_id", r.PathValue("env_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "env:" + hexID(id)
	q := r.URL.Query()
	after, err := strconv.ParseUint(q.Get("after"), 10, 64)
	if err != nil {
		return badRequest("watch env: after must be a sequence number")
	}
	wait := defaultWatchWait
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || time.Duration(n)*time.Second > maxWatchWait {
			return badRequest("watch env: wait must be 1 to %d seconds", int(maxWatchWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	if s.watch.n.Add(1) > MaxWatches {
		s.watch.n.Add(-1)
		return errOverloaded
	}
	defer s.watch.n.Add(-1)

	m := rc.p.machine
	var machineID []byte
	if m != nil {
		machineID = m.ID
	}
	// head reads the env head and checks that the caller may still see it, like getEnv.
	head := func(ctx context.Context) (*store.EnvHead, error) {
		h, err := s.envHead(ctx, id, machineID, rc.liveVerifier)
		if rc.liveVerifier != nil && (err == nil && !h.MachineLive || errors.Is(err, store.ErrNotFound) && !s.machineExists(ctx, m)) {
			s.machines.drop(m.ID)
			rc.p, rc.claimed = nil, "machine:"+hexID(m.ID)
			return nil, unauthorized(machineUnknown)
		}
		if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(h.AccountID, rc.accountID) {
			return nil, notFound("watch env: %s not found", hexID(id))
		}
		if err != nil {
			return nil, err
		}
		if m != nil && !m.AccountWide() && h.MachineWrap == nil {
			return nil, forbidden("watch env: %s is not in this machine key's scope", hexID(id))
		}
		return h, nil
	}
	ctx := r.Context()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(WatchPoll)
	defer tick.Stop()
	stop := s.watch.stop()
	for {
		h, err := head(pointCtx(ctx))
		if err != nil {
			return err
		}
		if h.Seq > after {
			writeJSON(w, http.StatusOK, api.EnvWatch{Seq: h.Seq})
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			w.WriteHeader(http.StatusNoContent)
			return nil
		case <-stop:
			w.WriteHeader(http.StatusNoContent)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
