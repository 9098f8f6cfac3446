// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opaquevault/opaquevault/internal/store"
)

// The change feed ([store.ChangeFeed]): one connection of its own, outside the pool, LISTENs on
// ov_changes, where the triggers of schema version 4 announce every committed change, and on a
// channel of this instance alone, where it announces marks to itself.
//
// Why the marks prove the feed current: PostgreSQL keeps one notification queue in commit order,
// and a listening backend passes its entries to its client in that order. A mark sent (through
// the pool) at time s commits after s; when the listener receives it, it has already received,
// and passed to the callback, every change committed before s. So while the last mark received
// was sent less than [store.FeedBound] ago, on the current connection, the feed is current. A
// heartbeat sends a mark every heartbeatEvery; Sync sends one and waits for it.
//
// When the connection fails, or no notification comes for reconnectAfter, the feed reconnects:
// LISTEN first, then ChangeAll (what was committed while nobody listened is unknown), then only
// marks sent after that count.

const (
	changeChannel  = "ov_changes"
	heartbeatEvery = 250 * time.Millisecond
	reconnectAfter = 5 * time.Second
	maxBackoff     = 2 * time.Second
)

// feed is a running [store.Feed].
type feed struct {
	db       *DB
	fn       func(store.Change)
	cfg      *pgx.ConnConfig
	markChan string
	base     time.Time // the monotonic origin of the times below (nanoseconds since base)
	cancel   context.CancelFunc
	done     sync.WaitGroup

	marks  atomic.Uint64
	sentMu sync.Mutex
	sent   map[uint64]int64 // send time of the marks not yet received

	last    atomic.Int64 // latest send time of a mark received on the current connection
	floor   atomic.Int64 // marks sent at or before floor do not count
	current atomic.Bool  // as last reported by check (for the ChangeAll at a lapse)

	tickMu sync.Mutex
	tick   chan struct{} // closed when a mark is received

	pid atomic.Uint32 // the listening backend's process id, 0 when there is none
}

var _ store.ChangeFeed = (*DB)(nil)

// StartFeed implements [store.ChangeFeed].
func (db *DB) StartFeed(ctx context.Context, fn func(store.Change)) (store.Feed, error) {
	cfg := db.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "ov-server change feed"
	f := &feed{
		db: db, fn: fn, cfg: cfg, base: time.Now(), sent: map[uint64]int64{}, tick: make(chan struct{}),
		markChan: "ov_mark_" + randomHex(8),
	}
	ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f.done.Add(2)
	go f.listenLoop(ctx)
	go f.heartbeat(ctx)
	db.feedMu.Lock()
	db.feed = f
	db.feedMu.Unlock()
	return f, nil
}

// FeedPID returns the process id of the backend the running change feed listens on (0 when it
// has none), for tests that kill or stop it.
func (db *DB) FeedPID() uint32 {
	db.feedMu.Lock()
	defer db.feedMu.Unlock()
	if db.feed == nil {
		return 0
	}
	return db.feed.pid.Load()
}

func (f *feed) now() int64 { return int64(time.Since(f.base)) }

// Current implements [store.Feed].
func (f *feed) Current() bool {
	l := f.last.Load()
	return l > f.floor.Load() && f.now()-l <= int64(store.FeedBound)
}

// Sync implements [store.Feed].
func (f *feed) Sync(ctx context.Context) {
	start := f.now()
	if !f.Current() {
		// Nothing is answered from memory now, and only a mark sent from now on makes the feed
		// current again: by then every change committed before this call has been passed on.
		f.raiseFloor(start)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, store.FeedBound)
	defer cancel()
	if f.mark(ctx) == nil && f.waitMark(ctx, start) {
		return
	}
	// Not shown in time: trust nothing until a mark sent from now on comes back.
	f.stale()
}

// waitMark waits until a mark sent at or after start has been received.
func (f *feed) waitMark(ctx context.Context, start int64) bool {
	for {
		f.tickMu.Lock()
		tick := f.tick
		f.tickMu.Unlock()
		if f.last.Load() >= start {
			return true
		}
		select {
		case <-tick:
		case <-ctx.Done():
			return false
		}
	}
}

// Close implements [store.Feed].
func (f *feed) Close() {
	f.cancel()
	f.done.Wait()
	f.db.feedMu.Lock()
	if f.db.feed == f {
		f.db.feed = nil
	}
	f.db.feedMu.Unlock()
}

// stale makes the feed not current until a mark sent after now is received, and reports ChangeAll.
func (f *feed) stale() {
	f.raiseFloor(f.now())
	f.fn(store.Change{Kind: store.ChangeAll})
}

// raiseFloor makes marks sent at or before t not count.
func (f *feed) raiseFloor(t int64) {
	for {
		fl := f.floor.Load()
		if t <= fl || f.floor.CompareAndSwap(fl, t) {
			break
		}
	}
	f.current.Store(false)
}

// mark announces the next mark to this instance's channel through the pool.
func (f *feed) mark(ctx context.Context) error {
	n := f.marks.Add(1)
	f.sentMu.Lock()
	f.sent[n] = f.now()
	f.sentMu.Unlock()
	_, err := f.db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, f.markChan, strconv.FormatUint(n, 10))
	return err
}

// heartbeat sends a mark every heartbeatEvery and reports a lapse (ChangeAll) when the feed stops
// being current.
func (f *feed) heartbeat(ctx context.Context) {
	defer f.done.Done()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mctx, cancel := context.WithTimeout(ctx, store.FeedBound)
		_ = f.mark(mctx) // a mark that fails to go out shows as a late one
		cancel()
		if f.current.Load() && !f.Current() {
			f.stale()
		}
	}
}

// listenLoop keeps one listening connection up, reconnecting with backoff.
func (f *feed) listenLoop(ctx context.Context) {
	defer f.done.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		listened := f.listen(ctx)
		f.pid.Store(0)
		f.stale()
		if listened {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen connects, listens and passes notifications on until the connection fails or is silent
// for reconnectAfter; it reports whether it got as far as listening.
func (f *feed) listen(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, f.cfg)
	cancel()
	if err != nil {
		return false
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{changeChannel, f.markChan} {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := conn.Exec(lctx, `LISTEN `+pgx.Identifier{ch}.Sanitize())
		cancel()
		if err != nil {
			return false
		}
	}
	// Listening now: forget what may have been missed before, and count only later marks.
	f.sentMu.Lock()
	clear(f.sent)
	f.sentMu.Unlock()
	f.pid.Store(conn.PgConn().PID())
	f.stale()
	for {
		wctx, cancel := context.WithTimeout(ctx, reconnectAfter)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			return true
		}
		if n.Channel == f.markChan {
			f.received(n.Payload)
			continue
		}
		f.fn(parseChange(n.Payload))
	}
}

// received notes that a mark came back.
func (f *feed) received(payload string) {
	n, err := strconv.ParseUint(payload, 10, 64)
	if err != nil {
		return
	}
	f.sentMu.Lock()
	at, ok := f.sent[n]
	for k := range f.sent {
		if k <= n {
			delete(f.sent, k)
		}
	}
	f.sentMu.Unlock()
	if !ok || at <= f.floor.Load() {
		return
	}
	for {
		l := f.last.Load()
		if at <= l || f.last.CompareAndSwap(l, at) {
			break
		}
	}
	f.current.Store(f.Current())
	f.tickMu.Lock()
	close(f.tick)
	f.tick = make(chan struct{})
	f.tickMu.Unlock()
}

// parseChange reads a payload of the triggers; anything else is ChangeAll.
func parseChange(p string) store.Change {
	kind, id, ok := strings.Cut(p, ":")
	if !ok {
		return store.Change{Kind: store.ChangeAll}
	}
	b, err := hex.DecodeString(id)
	if err != nil || len(b) == 0 {
		return store.Change{Kind: store.ChangeAll}
	}
	switch kind {
	case "e":
		return store.Change{Kind: store.ChangeEnv, ID: b}
	case "m":
		return store.Change{Kind: store.ChangeMachine, ID: b}
	case "a":
		return store.Change{Kind: store.ChangeAccount, ID: b}
	}
	return store.Change{Kind: store.ChangeAll}
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("read random bytes: " + err.Error()))
	}
	return hex.EncodeToString(b)
}
