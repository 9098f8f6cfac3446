// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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

func TestClientWaitsOutAShortRetryAfterOnce(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 || r.URL.Path == "/v1/apps" {
			w.Header().Set("Retry-After", "1")
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
	// A second 429 in a row is returned, with its Retry-After.
	_, err = c.Apps(context.Background())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrRateLimited) || e.RetryAfter.Seconds() != 1 {
		t.Fatalf("Apps after two 429s: %v", err)
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
