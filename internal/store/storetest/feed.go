// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// ChangeLog collects what a feed reports, as "e:hex", "m:hex", "a:hex" or "*".
type ChangeLog struct {
	mu  sync.Mutex
	got []string
}

// Add is a feed callback.
func (l *ChangeLog) Add(c store.Change) {
	s := "*"
	switch c.Kind {
	case store.ChangeEnv:
		s = "e:" + hex.EncodeToString(c.ID)
	case store.ChangeMachine:
		s = "m:" + hex.EncodeToString(c.ID)
	case store.ChangeAccount:
		s = "a:" + hex.EncodeToString(c.ID)
	}
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
}

// Take returns what was reported since the last Take, sorted, without duplicates; all tells
// whether a change of everything was among it.
func (l *ChangeLog) Take() (got []string, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.got {
		switch {
		case s == "*":
			all = true
		case !slices.Contains(got, s):
			got = append(got, s)
		}
	}
	l.got = nil
	slices.Sort(got)
	return got, all
}

// ChangeFeed checks, write by write, what a store's change feed reports: after each write, Sync
// returns only once every change committed before it has been reported, so the log then holds
// exactly what the write announced. Last-seen touches and the audit log announce nothing. exec
// runs one statement of SQL on the database through a connection of its own, with $1, $2, ...
// for args.
func ChangeFeed(t *testing.T, s store.Store, exec func(query string, args ...any) error) {
	cf, ok := s.(store.ChangeFeed)
	if !ok {
		t.Fatal("the store has no change feed")
	}
	envID, _, _ := SeedForUpgrade(t, s)
	v, err := s.ReadEnv(ctx, envID, store.ReadOptions{})
	must(t, err, "read env")
	accountID, appID := v.Env.AccountID, v.Env.AppID
	log := &ChangeLog{}
	f, err := cf.StartFeed(ctx, log.Add)
	must(t, err, "start feed")
	defer f.Close()
	deadline := time.Now().Add(15 * time.Second)
	for !f.Current() {
		if time.Now().After(deadline) {
			t.Fatal("the feed never became current")
		}
		time.Sleep(5 * time.Millisecond)
	}
	log.Take()
	machine := mkMachine(accountID, false)
	e, m, a := "e:"+hex.EncodeToString(envID), "m:"+hex.EncodeToString(machine.ID), "a:"+hex.EncodeToString(accountID)
	wrap := store.MachineWrap{MachineID: machine.ID, AppID: appID, EnvID: envID, Epoch: 1, Wrap: rnd(104)}
	steps := []struct {
		what  string
		write func() error
		want  []string
	}{
		{"create machine", func() error { return s.CreateMachine(ctx, machine, []store.MachineWrap{wrap}) }, []string{m}},
		{"touch machine", func() error { return s.TouchMachine(ctx, machine.ID, time.Now()) }, nil},
		{"append audit", func() error {
			return s.AppendAudit(ctx, &store.AuditEntry{AccountID: accountID, Time: time.Now(), Actor: "x", Action: "env.read", Target: "t", Result: "ok"})
		}, nil},
		{"commit", func() error {
			return s.CommitEnv(ctx, &store.Commit{EnvID: envID, ExpectedSeq: 2, Seq: 3, Manifest: rnd(30), ManifestSig: rnd(64),
				Put: []store.Record{{Blind: rnd(16), Version: 1, Data: rnd(40)}}, At: time.Now()})
		}, []string{e}},
		{"replace wraps", func() error { return s.ReplaceMachineWraps(ctx, accountID, machine.ID, []store.MachineWrap{wrap}) }, []string{m}},
		{"put signed", func() error {
			return s.PutSigned(ctx, &store.SignedObject{AccountID: accountID, Kind: store.EnvAccessKind, Key: store.EnvAccessKey(envID, 1),
				Version: 1, Raw: rnd(20), Sig: rnd(64), UpdatedAt: time.Now()})
		}, []string{a}},
		{"SQL update of a record", func() error { return exec(`UPDATE records SET version = version + 1 WHERE env_id = $1`, envID) }, []string{e}},
		{"SQL update of an app", func() error { return exec(`UPDATE apps SET name = 'web2' WHERE id = $1`, appID) }, []string{a}},
		{"SQL update of a machine's label", func() error { return exec(`UPDATE machines SET label = 'other' WHERE id = $1`, machine.ID) }, []string{m}},
		{"delete machine", func() error { return s.DeleteMachine(ctx, accountID, machine.ID) }, []string{m}},
	}
	for _, st := range steps {
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		f.Sync(ctx)
		if !f.Current() {
			t.Fatalf("%s: the feed is not current after Sync", st.what)
		}
		if got, _ := log.Take(); !slices.Equal(got, st.want) {
			t.Errorf("%s: announced %v, want %v", st.what, got, st.want)
		}
	}
}
