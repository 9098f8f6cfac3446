// SPDX-License-Identifier: Apache-2.0

package server

import (
	"math"
	"sync"
	"time"
)

// Rate is a token bucket: PerSecond tokens are added each second, up to Burst. A zero PerSecond
// disables the limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// limiter keeps one token bucket per key (a device key, a machine, an address, an email).
type limiter struct {
	rate Rate

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the memory of a limiter under a flood of distinct keys: past it, buckets that
// have refilled are dropped at once, and if that is not enough the oldest state is forgotten.
const maxBuckets = 100_000

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket. When the bucket is empty it returns false and how long
// until a token is available.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rate.PerSecond <= 0 {
		return true, 0
	}
	burst := float64(max(l.rate.Burst, 1))
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute || len(l.buckets) >= maxBuckets {
		l.sweep(now, burst)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*l.rate.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate.PerSecond * float64(time.Second))
	return false, wait
}

// sweep drops the buckets that are full again (they hold no state worth keeping).
func (l *limiter) sweep(now time.Time, burst float64) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate.PerSecond >= burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
