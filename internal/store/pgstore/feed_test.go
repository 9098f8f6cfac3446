// SPDX-License-Identifier: Apache-2.0

package pgstore

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/storetest"
)

// changeLog collects what a feed reports, as "e:hex", "m:hex", "a:hex" or "*".
type changeLog struct {
	mu  sync.Mutex
	got []string
}

func (l *changeLog) add(c store.Change) {
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

// take returns what was reported since the last take, without ChangeAll.
func (l *changeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.got {
		if s != "*" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	l.got = nil
	slices.Sort(out)
	return out
}

func rb(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// TestFeedTriggers checks, write by write, what the triggers announce: after each write Sync
// returns only once every change committed before it has been reported, so the log then holds
// exactly what the write announced. Last-seen touches and the audit log announce nothing.
func TestFeedTriggers(t *testing.T) {
	db := openNew(t)
	defer db.Close()
	envID, _, _ := storetest.SeedForUpgrade(t, db)
	var accountID, appID []byte
	if err := db.pool.QueryRow(bg, `SELECT a.account_id, a.id FROM envs e JOIN apps a ON a.id = e.app_id WHERE e.id = $1`, envID).Scan(&accountID, &appID); err != nil {
		t.Fatal(err)
	}
	log := &changeLog{}
	f, err := db.StartFeed(bg, log.add)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(15 * time.Second)
	for !f.Current() {
		if time.Now().After(deadline) {
			t.Fatal("the feed never became current")
		}
		time.Sleep(5 * time.Millisecond)
	}
	log.take()
	e, m, a := "e:"+hex.EncodeToString(envID), "", "a:"+hex.EncodeToString(accountID)
	machine := &store.Machine{ID: rb(16), AccountID: accountID, Verifier: rb(32), XPub: rb(32), Grant: rb(40), GrantSig: rb(64),
		PinSignPub: rb(32), PinMAC: rb(32), Label: "host", AKVersion: 1, CreatedAt: time.Now()}
	m = "m:" + hex.EncodeToString(machine.ID)
	wrap := store.MachineWrap{MachineID: machine.ID, AppID: appID, EnvID: envID, Epoch: 1, Wrap: rb(104)}
	steps := []struct {
		what  string
		write func() error
		want  []string
	}{
		{"create machine", func() error { return db.CreateMachine(bg, machine, []store.MachineWrap{wrap}) }, []string{m}},
		{"touch machine", func() error { return db.TouchMachine(bg, machine.ID, time.Now()) }, nil},
		{"append audit", func() error {
			return db.AppendAudit(bg, &store.AuditEntry{AccountID: accountID, Time: time.Now(), Actor: "x", Action: "env.read", Target: "t", Result: "ok"})
		}, nil},
		{"commit", func() error {
			return db.CommitEnv(bg, &store.Commit{EnvID: envID, ExpectedSeq: 2, Seq: 3, Manifest: rb(30), ManifestSig: rb(64),
				Put: []store.Record{{Blind: rb(16), Version: 1, Data: rb(40)}}, At: time.Now()})
		}, []string{e}},
		{"replace wraps", func() error { return db.ReplaceMachineWraps(bg, accountID, machine.ID, []store.MachineWrap{wrap}) }, []string{m}},
		{"put signed", func() error {
			return db.PutSigned(bg, &store.SignedObject{AccountID: accountID, Kind: store.EnvAccessKind, Key: store.EnvAccessKey(envID, 1),
				Version: 1, Raw: rb(20), Sig: rb(64), UpdatedAt: time.Now()})
		}, []string{a}},
		{"SQL update of a record", func() error {
			_, err := db.pool.Exec(bg, `UPDATE records SET version = version + 1 WHERE env_id = $1`, envID)
			return err
		}, []string{e}},
		{"SQL update of an app", func() error {
			_, err := db.pool.Exec(bg, `UPDATE apps SET name = 'web2' WHERE id = $1`, appID)
			return err
		}, []string{a}},
		{"delete machine", func() error { return db.DeleteMachine(bg, accountID, machine.ID) }, []string{m}},
	}
	for _, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		f.Sync(bg)
		if !f.Current() {
			t.Fatalf("%s: the feed is not current after Sync", s.what)
		}
		if got := log.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: announced %v, want %v", s.what, got, s.want)
		}
	}

	// A TRUNCATE announces everything.
	if _, err := db.pool.Exec(bg, `TRUNCATE machine_wraps`); err != nil {
		t.Fatal(err)
	}
	f.Sync(bg)
	log.mu.Lock()
	all := slices.Contains(log.got, "*")
	log.mu.Unlock()
	if !all {
		t.Error("TRUNCATE did not announce a change of everything")
	}
}
