// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientRefusesPlainHTTPOffLoopback(t *testing.T) {
	for _, u := range []string{"http://vault.example.com:8443", "http://10.0.0.1:8443"} {
		if _, err := NewClient(u, ClientOptions{}); err == nil {
			t.Errorf("NewClient(%s) accepted plain http off loopback", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8443", "http://localhost:1", "http://[::1]:8443", "https://vault.example.com", "unix:///run/ov.sock"} {
		if _, err := NewClient(u, ClientOptions{}); err != nil {
			t.Errorf("NewClient(%s): %v", u, err)
		}
	}
	if _, err := NewClient("http://vault.example.com", ClientOptions{Insecure: true}); err != nil {
		t.Errorf("--insecure: %v", err)
	}
}

func TestClientWaitsOutAShortRetryAfter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := calls.Add(1); n == 1 || r.URL.Path == "/v1/apps" {
			w.Header().Set("Retry-After", "1")
			if r.URL.Path == "/v1/apps" {
				w.Header().Set("Retry-After", "6")
			}
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"account_id":"ab"}`))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Account(context.Background())
	if err != nil || b.AccountID != "ab" || calls.Load() != 2 {
		t.Fatalf("Account after one 429: %v, %+v, %d calls", err, b, calls.Load())
	}
	// A Retry-After longer than the client waits by itself is returned at once, with its value.
	calls.Store(0)
	_, err = c.Apps(context.Background())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrRateLimited) || e.RetryAfter.Seconds() != 6 || calls.Load() != 1 {
		t.Fatalf("Apps after a 429 with Retry-After 6: %v after %d calls", err, calls.Load())
	}
}

// TestClientBacksOffWithJitter: a server that sheds (503 overloaded, or 429) gets the same request
// again, at most maxAttempts times in all, each wait longer than the one before; any other 503 (a
// proxy's) is not retried, since it may have been processed.
func TestClientBacksOffWithJitter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		times = append(times, time.Now())
		bodies = append(bodies, string(b))
		n := len(times)
		mu.Unlock()
		switch {
		case r.URL.Path == "/v1/apps" && r.Method == "POST":
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"overloaded","message":"busy"}}`))
		case r.URL.Path == "/v1/devices":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"proxy"}}`))
		case n < 3:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"overloaded","message":"busy"}}`))
		default:
			_, _ = w.Write([]byte(`{"account_id":"ab"}`))
		}
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, ClientOptions{})
	reset := func() {
		mu.Lock()
		times, bodies = nil, nil
		mu.Unlock()
	}
	if b, err := c.Account(context.Background()); err != nil || b.AccountID != "ab" || len(times) != 3 {
		t.Fatalf("Account after two 503s: %v, %d calls", err, len(times))
	}
	reset()
	_, err := c.CreateApp(context.Background(), &NewApp{AppID: "00", Name: "x"})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeOverloaded || len(times) != maxAttempts {
		t.Fatalf("CreateApp always shed: %v after %d sends, want %d", err, len(times), maxAttempts)
	}
	for i := 1; i < len(times); i++ {
		if bodies[i] != bodies[0] {
			t.Fatalf("send %d had another body", i)
		}
		if gap := times[i].Sub(times[i-1]); gap < 100*time.Millisecond<<(i-1) {
			t.Fatalf("wait %d was %v, want at least %v", i, gap, 100*time.Millisecond<<(i-1))
		}
	}
	reset()
	if _, err := c.Devices(context.Background()); err == nil || len(times) != 1 {
		t.Fatalf("a proxy's 503: %v after %d sends, want 1", err, len(times))
	}
	// The jitter: waits for the same attempt differ, and stay within [d, 1.5d].
	seen := map[time.Duration]bool{}
	for range 50 {
		d := backoff(time.Second, 1)
		if d < time.Second || d > 1500*time.Millisecond {
			t.Fatalf("backoff(1s, 1) = %v", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff has no jitter: %d distinct waits in 50", len(seen))
	}
	if d := backoff(time.Second, 5); d < maxRetryAfter || d > maxRetryAfter*3/2 {
		t.Fatalf("backoff is not capped: %v", d)
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := NewClient(url, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Account(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("closed server: %v, want an UnreachableError", err)
	}
}

func TestClientCacheTTL(t *testing.T) {
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		_, _ = w.Write([]byte(`{"apps":[]}`))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, ClientOptions{CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Apps(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if gets.Load() != 1 {
		t.Fatalf("3 GETs within the TTL reached the server %d times, want 1", gets.Load())
	}
	_, _ = c.CreateApp(ctx, &NewApp{AppID: "00", Name: "x"}) // any write clears the cache
	if _, err := c.Apps(ctx); err != nil || gets.Load() != 2 {
		t.Fatalf("GET after a write: %v, %d server GETs, want 2", err, gets.Load())
	}
	plain, _ := NewClient(srv.URL, ClientOptions{})
	_, _ = plain.Apps(ctx)
	_, _ = plain.Apps(ctx)
	if gets.Load() != 4 {
		t.Fatalf("a client without CacheTTL cached: %d server GETs, want 4", gets.Load())
	}
}
