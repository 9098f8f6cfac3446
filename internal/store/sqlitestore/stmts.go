// SPDX-License-Identifier: Apache-2.0

package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmts prepares each query once per pool and reuses it. database/sql keeps one prepared copy
// per connection underneath (re-preparing only on a connection that has not seen the query), and
// a transaction borrows its connection's copy (Tx.StmtContext), so a query is compiled by SQLite
// once per connection rather than on every call.
type stmts struct {
	db  *sql.DB
	off bool // benchmarks' baseline: run every query unprepared, as database/sql does by default

	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	pending map[string]bool // missed inside a transaction; prepared by the next begin
}

func newStmts(db *sql.DB) *stmts { return &stmts{db: db, m: map[string]*sql.Stmt{}} }

func (c *stmts) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.RLock()
	st := c.m[q]
	c.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	// Prepare without holding mu: preparing may wait for a connection that a transaction holds,
	// and that transaction may need mu.
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[q]; old != nil {
		st.Close()
		return old, nil
	}
	c.m[q] = st
	return st, nil
}

func (c *stmts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// row is what QueryRow returns; errRow carries a preparation error to Scan.
type row interface{ Scan(...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (c *stmts) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if c.off {
		return c.db.ExecContext(ctx, q, args...)
	}
	st, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmts) queryRow(ctx context.Context, q string, args ...any) row {
	if c.off {
		return c.db.QueryRowContext(ctx, q, args...)
	}
	st, err := c.get(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmts) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if c.off {
		return c.db.QueryContext(ctx, q, args...)
	}
	st, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// begin starts a transaction on c's pool. Queries that transactions missed in the cache are
// prepared first, while this goroutine holds no connection: preparing inside a transaction would
// wait for a second connection, which the one-connection writer never has.
func (c *stmts) begin(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	c.mu.RLock()
	n := len(c.pending)
	c.mu.RUnlock()
	if n > 0 && !c.off {
		c.mu.Lock()
		pending := c.pending
		c.pending = nil
		c.mu.Unlock()
		for q := range pending {
			if _, err := c.get(ctx, q); err != nil {
				return nil, err
			}
		}
	}
	return c.db.BeginTx(ctx, opts)
}

// in returns q's statement bound to tx (tx must come from c's pool), or nil when q is not
// prepared yet: the caller then runs q unprepared, and the next [stmts.begin] prepares it.
func (c *stmts) in(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if c.off {
		return nil
	}
	c.mu.RLock()
	st := c.m[q]
	c.mu.RUnlock()
	if st == nil {
		c.mu.Lock()
		if c.pending == nil {
			c.pending = map[string]bool{}
		}
		c.pending[q] = true
		c.mu.Unlock()
		return nil
	}
	return tx.StmtContext(ctx, st)
}

func (c *stmts) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := c.in(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (c *stmts) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) row {
	if st := c.in(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (c *stmts) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := c.in(ctx, tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// txStmt is q bound to tx for repeated use in one transaction: the cached statement, or one
// prepared for this transaction only.
func (c *stmts) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if st := c.in(ctx, tx, q); st != nil {
		return st, nil
	}
	return tx.PrepareContext(ctx, q)
}
