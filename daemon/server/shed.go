// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

// Overload. The server works on at most MaxInFlight API requests at once; a request beyond that
// waits up to QueueWait for a slot (at most MaxQueued of them wait), and is otherwise refused
// before anything is read or written, with 503, code "overloaded" and Retry-After: 1. The client
// (internal/api) waits and retries it with jitter. Refusing early keeps the answered requests fast
// instead of letting every request slow down until all of them time out.

// Overload tunes the shedding; a zero MaxInFlight disables it.
type Overload struct {
	MaxInFlight int
	MaxQueued   int
	QueueWait   time.Duration
}

// DefaultOverload returns the shedding ov-server uses unless flags say otherwise.
func DefaultOverload() Overload {
	return Overload{MaxInFlight: 64, MaxQueued: 256, QueueWait: 200 * time.Millisecond}
}

type shedder struct {
	o      Overload
	slots  chan struct{}
	queued atomic.Int64
}

func newShedder(o Overload) *shedder {
	if o.MaxInFlight <= 0 {
		return nil
	}
	return &shedder{o: o, slots: make(chan struct{}, o.MaxInFlight)}
}

// acquire takes a slot, waiting at most QueueWait; false means shed.
func (s *shedder) acquire(r *http.Request) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.queued.Add(1) > int64(s.o.MaxQueued) {
		s.queued.Add(-1)
		return false
	}
	defer s.queued.Add(-1)
	t := time.NewTimer(s.o.QueueWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

func (s *shedder) release() { <-s.slots }

var errOverloaded = &apiError{status: http.StatusServiceUnavailable, code: api.CodeOverloaded,
	msg: "the server is overloaded: retry later", retry: time.Second}
