// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per peer uid.
type limiter struct {
	rate  float64 // tokens per second; +Inf when off
	burst float64

	mu      sync.Mutex
	buckets map[uint32]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate) *limiter {
	l := &limiter{buckets: map[uint32]*bucket{}}
	if r.PerMinute < 0 {
		l.rate = math.Inf(1)
		return l
	}
	l.rate = r.PerMinute / 60
	l.burst = float64(max(r.Burst, 1))
	return l
}

// allow takes a token for uid; when there is none it says how long until
// there is.
func (l *limiter) allow(uid uint32, now time.Time) (bool, time.Duration) {
	if math.IsInf(l.rate, 1) {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b, ok := l.buckets[uid]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[uid] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate <= 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep forgets buckets that have refilled.
func (l *limiter) sweep(now time.Time) {
	l.swept = now
	for uid, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, uid)
		}
	}
}
