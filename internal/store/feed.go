// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"time"
)

// A change feed tells one server instance about every write committed to the database, by any
// instance or by hand, soon enough that the instance may answer reads from memory. Both stores
// implement [ChangeFeed], through triggers: pgstore with LISTEN/NOTIFY (changes arrive within the
// notification latency, at most FeedBound), sqlitestore with a change log that Current reads at
// every call (never stale). A store without one makes the server check the database on every
// request.

// FeedBound is how stale a [Feed] may be while it says it is current: while Current reports true,
// every write committed more than FeedBound ago has been passed to the feed's callback.
const FeedBound = time.Second

// ChangeKind says what a [Change] names.
type ChangeKind uint8

const (
	// ChangeAll means that anything may have changed (a notification may have been missed): forget
	// everything learned from the database.
	ChangeAll ChangeKind = iota
	// ChangeEnv names an environment (its row, keys, records).
	ChangeEnv
	// ChangeMachine names a machine (its row or wraps).
	ChangeMachine
	// ChangeAccount names an account (its row, apps, or signed objects).
	ChangeAccount
)

// Change is one committed change: what kind of thing changed and its id (nil for ChangeAll).
type Change struct {
	Kind ChangeKind
	ID   []byte
}

// ChangeFeed is implemented by a store that can report committed writes; see [Feed].
type ChangeFeed interface {
	// StartFeed starts reporting changes to fn until Close or ctx ends. fn is called for every
	// committed change (notably: environments' heads, records and keys, machines and their wraps,
	// apps, accounts, signed objects; not the audit log nor last-used times), and with ChangeAll
	// whenever a change may have been missed or the feed stops being current. fn must be quick
	// and safe for concurrent use.
	StartFeed(ctx context.Context, fn func(Change)) (Feed, error)
}

// Feed is a running change feed.
type Feed interface {
	// Current reports whether every write committed more than [FeedBound] ago has been passed to
	// the callback. It is cheap: the server asks it on every request.
	Current() bool
	// Sync returns once every write committed before the call has been passed to the callback; if
	// that cannot be shown within [FeedBound], the feed stops being current (and reports
	// ChangeAll) until it is again.
	Sync(ctx context.Context)
	// Close stops the feed.
	Close()
}
