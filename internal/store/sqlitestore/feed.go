// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// The change feed of SQLite ([store.ChangeFeed]). The triggers of migration 5 write, in the same
// transaction as every change to a row a server may answer from memory, what changed and a
// sequence number into the table changes. SQLite has one writer at a time, so sequence numbers
// grow in commit order. A read of the log (the rows past the last number seen: one indexed
// statement, usually answering nothing) passes every change committed before it began to the
// callback before it returns. Sync always reads (a server calls it after each write it answered,
// so this process's own writes are seen at once); Current reads when the last read began more
// than pollEvery ago, so writes by another process on the same file (a second ov-server, sqlite3
// by hand) are seen within pollEvery, and a busy server reads the log at most about once per
// pollEvery instead of once per request.

// pollEvery bounds how stale Current lets memory be for another process's writes.
const pollEvery = time.Millisecond

type feed struct {
	db     *DB
	fn     func(store.Change)
	last   atomic.Int64 // the highest sequence number passed to fn
	mu     sync.Mutex   // orders the advances of last with their calls of fn
	failed atomic.Bool  // the last read failed: what it missed was reported as ChangeAll
	closed atomic.Bool
	// fresh is when the last successful read began (monotonic, ns since start).
	fresh atomic.Int64
	start time.Time

	// Concurrent requests share reads of the log: a caller that finds a read in flight (begun
	// before it asked, so perhaps before a change it must see) waits for the next one, which
	// begins after that read ends; every caller waiting for it shares it.
	roundMu sync.Mutex
	current *round // the read in flight, if any
	next    *round // the read that begins when current ends, if anyone waits for it
}

type round struct {
	done chan struct{}
	ok   bool
}

const changesSince = `SELECT seq, kind, id FROM changes WHERE seq > ? ORDER BY seq`

// StartFeed implements [store.ChangeFeed].
func (db *DB) StartFeed(ctx context.Context, fn func(store.Change)) (store.Feed, error) {
	f := &feed{db: db, fn: fn, start: time.Now()}
	var last int64
	if err := prepared(ctx, db.r, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&last); err != nil {
		return nil, sqlErr("start change feed", err)
	}
	f.last.Store(last)
	return f, nil
}

// Current implements [store.Feed]: it reports every change committed before the call, and false
// when the log cannot be read (the server then reads the database for every request).
func (f *feed) Current() bool {
	if !f.closed.Load() && !f.failed.Load() && time.Since(f.start)-time.Duration(f.fresh.Load()) < pollEvery {
		return true
	}
	return f.shared()
}

// Sync implements [store.Feed].
func (f *feed) Sync(context.Context) { f.shared() }

// shared returns the outcome of a read of the log that began after the call.
func (f *feed) shared() bool {
	f.roundMu.Lock()
	if f.current == nil {
		r := &round{done: make(chan struct{})}
		f.current = r
		f.roundMu.Unlock()
		return f.run(r)
	}
	wait := f.current
	r, lead := f.next, false
	if r == nil {
		r, lead = &round{done: make(chan struct{})}, true
		f.next = r
	}
	f.roundMu.Unlock()
	if !lead {
		<-r.done
		return r.ok
	}
	<-wait.done
	f.roundMu.Lock()
	f.next = nil
	// Another caller may have begun a read since wait ended; this one runs alongside it.
	if f.current == nil {
		f.current = r
	}
	f.roundMu.Unlock()
	return f.run(r)
}

// run reads the log for r and hands the outcome to r's waiters.
func (f *feed) run(r *round) bool {
	began := time.Since(f.start)
	r.ok = f.poll(context.Background())
	if r.ok {
		for {
			old := f.fresh.Load()
			if int64(began) <= old || f.fresh.CompareAndSwap(old, int64(began)) {
				break
			}
		}
	}
	f.roundMu.Lock()
	if f.current == r {
		f.current = nil
	}
	f.roundMu.Unlock()
	close(r.done)
	return r.ok
}

// Close implements [store.Feed].
func (f *feed) Close() { f.closed.Store(true) }

type change struct {
	seq int64
	ch  store.Change
}

func (f *feed) poll(ctx context.Context) bool {
	if f.closed.Load() {
		return false
	}
	since := f.last.Load()
	chs, err := f.read(ctx, since)
	if err != nil {
		// What the failed read would have told is unknown: forget everything, now and, as the
		// log may have moved on meanwhile, once more when a read works again.
		if !f.failed.Swap(true) {
			f.fn(store.Change{Kind: store.ChangeAll})
		}
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed.Swap(false) {
		f.fn(store.Change{Kind: store.ChangeAll})
	}
	for _, c := range chs {
		// Concurrent polls may read overlapping rows; each change is passed on at least once,
		// before any poll that read it returns.
		f.fn(c.ch)
		if c.seq > f.last.Load() {
			f.last.Store(c.seq)
		}
	}
	return true
}

func (f *feed) read(ctx context.Context, since int64) ([]change, error) {
	st, err := preparedStmt(ctx, f.db.r, changesSince)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(context.WithoutCancel(ctx), since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []change
	for rows.Next() {
		var c change
		var kind string
		if err := rows.Scan(&c.seq, &kind, &c.ch.ID); err != nil {
			return nil, err
		}
		switch kind {
		case "e":
			c.ch.Kind = store.ChangeEnv
		case "m":
			c.ch.Kind = store.ChangeMachine
		case "a":
			c.ch.Kind = store.ChangeAccount
		default:
			c.ch = store.Change{Kind: store.ChangeAll}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
