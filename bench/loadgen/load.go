// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stats are what one phase measured, client side.
type stats struct {
	ok, errs, shed int64
	notSent        int64 // open loop: arrivals the load generator could not start (too many open)
	elapsed        time.Duration
	lat            []time.Duration // of successful requests
	firstErr       error
}

func (s *stats) rate() float64 { return float64(s.ok) / s.elapsed.Seconds() }

func (s *stats) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	slices.Sort(s.lat)
	return s.lat[min(len(s.lat)-1, int(float64(len(s.lat))*p))]
}

// recorder collects per-worker results without a shared lock on the hot path.
type recorder struct {
	mu  sync.Mutex
	all stats
}

type worker struct {
	st stats
}

func (w *worker) done(start time.Time, status int, err error) {
	switch {
	case err == nil && status == http.StatusOK:
		w.st.ok++
		w.st.lat = append(w.st.lat, time.Since(start))
	case err == nil && (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests):
		w.st.shed++
	default:
		w.st.errs++
		if w.st.firstErr == nil {
			if err == nil {
				err = fmt.Errorf("status %d", status)
			}
			w.st.firstErr = err
		}
	}
}

func (r *recorder) merge(w *worker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all.ok += w.st.ok
	r.all.errs += w.st.errs
	r.all.shed += w.st.shed
	r.all.lat = append(r.all.lat, w.st.lat...)
	if r.all.firstErr == nil {
		r.all.firstErr = w.st.firstErr
	}
}

// httpGet sends one GET with a bearer token and reads the whole answer. A 503 or 429 must carry
// Retry-After; one without it is an error.
func httpGet(ctx context.Context, hc *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if (resp.StatusCode == 503 || resp.StatusCode == 429) && resp.Header.Get("Retry-After") == "" {
		return resp.StatusCode, errors.New("shed without Retry-After")
	}
	if resp.StatusCode == 200 && n == 0 {
		return 0, errors.New("empty answer")
	}
	return resp.StatusCode, nil
}

func newHTTPClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = conns * 4
	tr.MaxIdleConnsPerHost = conns * 2
	tr.MaxConnsPerHost = conns * 2
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// closedLoop runs clients workers for dur; each calls step repeatedly with its index.
func closedLoop(clients int, dur time.Duration, step func(ctx context.Context, i int, w *worker)) *stats {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var rec recorder
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{}
			for ctx.Err() == nil {
				step(ctx, i, w)
			}
			rec.merge(w)
		}()
	}
	wg.Wait()
	rec.all.elapsed = time.Since(start)
	return &rec.all
}

// openLoop starts one request every 1/rate seconds, whatever the server's pace (up to maxOpen
// at once; an arrival beyond that counts as an error), for dur.
func openLoop(rate float64, dur time.Duration, maxOpen int, step func(ctx context.Context, w *worker)) *stats {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var rec recorder
	var wg sync.WaitGroup
	var open atomic.Int64
	start := time.Now()
	every := time.Duration(float64(time.Second) / rate)
	var notSent int64
	for n := 0; ; n++ {
		at := start.Add(time.Duration(n) * every)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		if open.Add(1) > int64(maxOpen) {
			open.Add(-1)
			notSent++
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Add(-1)
			w := &worker{}
			// Requests started before the end are finished, on their own context.
			step(context.WithoutCancel(ctx), w)
			rec.merge(w)
		}()
	}
	rec.all.elapsed = time.Since(start)
	wg.Wait()
	rec.all.notSent = notSent
	return &rec.all
}

// pick returns true with probability p.
func pick(p float64) bool { return rand.Float64() < p }
