// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := newLimiter(DefaultRate)
	now := time.Unix(1000, 0)
	for i := range 10 {
		if ok, _ := l.allow(1000, now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, retry := l.allow(1000, now)
	if ok || retry != 2*time.Second {
		t.Fatalf("11th request: %v, retry %v; want refused, retry 2s", ok, retry)
	}
	if ok, _ := l.allow(1001, now); !ok {
		t.Error("another uid shares the bucket")
	}
	if ok, _ := l.allow(1000, now.Add(2*time.Second)); !ok {
		t.Error("no token after 2s")
	}
	if ok, _ := l.allow(1000, now.Add(2*time.Second)); ok {
		t.Error("two tokens after 2s")
	}
	// A full minute refills the burst, not more.
	later := now.Add(10 * time.Minute)
	for i := range 10 {
		if ok, _ := l.allow(1000, later); !ok {
			t.Fatalf("request %d after a pause refused", i+1)
		}
	}
	if ok, _ := l.allow(1000, later); ok {
		t.Error("burst above 10 after a long pause")
	}
	off := newLimiter(Rate{PerMinute: -1})
	for range 100 {
		if ok, _ := off.allow(1, now); !ok {
			t.Fatal("limiting is off but refused")
		}
	}
}
