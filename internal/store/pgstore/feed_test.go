// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

// TestFeedTriggers checks, write by write, what the triggers announce: after each write Sync
// returns only once every change committed before it has been reported, so the log then holds
// exactly what the write announced. Last-seen touches and the audit log announce nothing.
func TestFeedTriggers(t *testing.T) {
	db := openNew(t)
	defer db.Close()
	storetest.ChangeFeed(t, db, func(q string, args ...any) error {
		_, err := db.pool.Exec(bg, q, args...)
		return err
	})

	// A TRUNCATE announces everything.
	log := &storetest.ChangeLog{}
	f, err := db.StartFeed(bg, log.Add)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for deadline := time.Now().Add(15 * time.Second); !f.Current(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the feed never became current")
		}
	}
	if _, err := db.pool.Exec(bg, `TRUNCATE machine_wraps`); err != nil {
		t.Fatal(err)
	}
	f.Sync(bg)
	if _, all := log.Take(); !all {
		t.Error("TRUNCATE did not announce a change of everything")
	}
}
