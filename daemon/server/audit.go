// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/store"
)

// Audit batching. One writer goroutine takes every queued entry (at most auditMaxBatch) and
// appends them in one transaction, so a flood of reads costs one fsync per batch instead of one
// per request; batches grow by themselves while the previous one is being written.
//
// A batch of read entries only is held up to auditLinger for more to join it; an entry that a
// client waits for (a write's) is written at once, with whatever is queued.
//
// What a crash can lose: entries of reads (and of refused requests) are answered before they are
// written, so a crash loses those not yet written: at most the last auditLinger plus one batch
// write (a few tens of milliseconds), and never more than auditQueue entries. Entries of writes
// (account, app, env, machine and device changes, logins) are durable before the client gets its
// answer, as before.
const (
	auditQueue    = 4096
	auditMaxBatch = 512
	auditLinger   = 10 * time.Millisecond
)

type auditItem struct {
	e    *store.AuditEntry
	done chan struct{} // closed once written (or failed); nil for a fire-and-forget entry
}

type auditor struct {
	st      store.Store
	log     *logrus.Entry
	metrics *metrics
	q       chan auditItem
	stop    chan struct{}
	stopped chan struct{}

	mu     sync.RWMutex // held for reading while queueing; close takes it to stop new entries
	closed bool
}

func newAuditor(st store.Store, log *logrus.Entry, m *metrics) *auditor {
	a := &auditor{st: st, log: log, metrics: m, q: make(chan auditItem, auditQueue), stop: make(chan struct{}), stopped: make(chan struct{})}
	go a.loop()
	return a
}

// add queues e. With wait, it returns once e is in the database (or its write failed).
func (a *auditor) add(e *store.AuditEntry, wait bool) {
	it := auditItem{e: e}
	if wait {
		it.done = make(chan struct{})
	}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		a.write([]auditItem{it})
		return
	}
	a.q <- it // the writer runs until close, which waits for this read lock
	a.mu.RUnlock()
	if wait {
		<-it.done
	}
}

// sync waits until every entry queued before it is written.
func (a *auditor) sync() {
	a.add(nil, true)
}

func (a *auditor) loop() {
	defer close(a.stopped)
	batch := make([]auditItem, 0, auditMaxBatch)
	for {
		select {
		case it := <-a.q:
			batch = append(batch[:0], it)
		case <-a.stop:
			// Nothing can be queued any more: drain what is, then stop.
			batch = batch[:0]
			for len(a.q) > 0 {
				batch = append(batch, <-a.q)
			}
			a.write(batch)
			return
		}
		waited := batch[0].done != nil
		linger := time.NewTimer(auditLinger)
	fill:
		for len(batch) < auditMaxBatch {
			if waited {
				// Someone waits: take what is queued now, and go.
				select {
				case it := <-a.q:
					batch = append(batch, it)
					continue
				default:
					break fill
				}
			}
			select {
			case it := <-a.q:
				batch = append(batch, it)
				waited = it.done != nil
			case <-linger.C:
				break fill
			case <-a.stop:
				break fill
			}
		}
		linger.Stop()
		a.write(batch)
	}
}

func (a *auditor) write(items []auditItem) {
	es := make([]*store.AuditEntry, 0, len(items))
	for _, it := range items {
		if it.e != nil {
			es = append(es, it.e)
		}
	}
	if len(es) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.st.AppendAuditBatch(ctx, es)
		cancel()
		a.metrics.auditBatch.Observe(float64(len(es)))
		if err != nil {
			a.metrics.auditErrors.Inc()
			// The entries are kept in the log so that nothing is lost silently. They hold no secret.
			for _, e := range es {
				a.log.WithFields(logrus.Fields{"error": err.Error(), "actor": e.Actor, "action": e.Action, "target": e.Target,
					"remote": e.RemoteAddr, "result": e.Result, "at": e.Time.UTC().Format(time.RFC3339Nano)}).Error("append audit entry")
			}
		}
	}
	for _, it := range items {
		if it.done != nil {
			close(it.done)
		}
	}
}

// close writes what is queued and stops the writer.
func (a *auditor) close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	<-a.stopped
}
