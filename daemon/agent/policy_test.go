// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"testing"
	"time"
)

func TestLockoutWindow(t *testing.T) {
	var l lockout
	t0 := time.Unix(1000, 0)
	for i, at := range []time.Duration{0, 5 * time.Minute, 11 * time.Minute} {
		if n, hit := l.add(t0.Add(at), 3, 10*time.Minute); hit {
			t.Fatalf("denial %d: locked out with %d in the window", i+1, n)
		}
	}
	// 5m, 11m, 12m are within 10 minutes: the third one locks, and the count starts over.
	if n, hit := l.add(t0.Add(12*time.Minute), 3, 10*time.Minute); !hit || n != 3 {
		t.Errorf("third denial within the window: %d, %v", n, hit)
	}
	if _, hit := l.add(t0.Add(13*time.Minute), 3, 10*time.Minute); hit {
		t.Error("the count did not start over after a lockout")
	}
}

func TestDistinctCounter(t *testing.T) {
	var d distinct
	k := scopeKey{1000, "myapp", "production"}
	t0 := time.Unix(1000, 0)
	if n, crossed := d.add(k, []string{"A", "B", "A"}, t0, 3, time.Hour); n != 2 || crossed {
		t.Fatalf("2 distinct: %d, %v", n, crossed)
	}
	if n, crossed := d.add(scopeKey{1000, "myapp", "dev"}, []string{"C", "D", "E"}, t0, 3, time.Hour); n != 3 || crossed {
		t.Fatalf("another scope counts apart: %d, %v", n, crossed)
	}
	if n, crossed := d.add(k, []string{"B", "C", "D"}, t0.Add(time.Minute), 3, time.Hour); n != 4 || !crossed {
		t.Fatalf("4 distinct, threshold 3: %d, %v", n, crossed)
	}
	if _, crossed := d.add(k, []string{"E", "F"}, t0.Add(2*time.Minute), 3, time.Hour); crossed {
		t.Error("warned twice in one window")
	}
	if n, crossed := d.add(k, []string{"A"}, t0.Add(61*time.Minute), 3, time.Hour); n != 1 || crossed {
		t.Errorf("a new window: %d, %v", n, crossed)
	}
	if len(d.sets) != 1 {
		t.Errorf("%d sets kept after the other scope's window ended, want 1", len(d.sets))
	}
}

func TestConnCount(t *testing.T) {
	l := Limits{MaxConns: 6, MaxConnsPerUID: 4}
	n := connCount{perUID: map[uint32]int{}}
	for range 4 {
		if err := n.take(l, 1000, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.take(l, 1000, true); err == nil {
		t.Error("owner past its cap")
	}
	if err := n.take(l, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := n.take(l, 7, false); err != nil {
		t.Fatal(err)
	}
	if err := n.take(l, 8, false); err == nil {
		t.Error("other uids past their share")
	}
	n.release(1000, true)
	if err := n.take(l, 8, false); err == nil {
		t.Error("a slot the owner freed went to another uid")
	}
	if err := n.take(l, 1000, true); err != nil {
		t.Errorf("owner after a release: %v", err)
	}
	if n.total != 6 || n.others != 2 {
		t.Errorf("total %d, others %d", n.total, n.others)
	}
}
