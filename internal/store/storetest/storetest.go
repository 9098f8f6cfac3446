// SPDX-License-Identifier: Apache-2.0

// Package storetest is the conformance suite of [store.Store]: every implementation (SQLite,
// PostgreSQL) runs [Run] and [RunReopen] and must pass all of it. The suite uses only the
// interface, so it also documents the semantics an implementation must keep. (Schema-version
// checks, such as refusing a newer schema, depend on how an implementation records versions and
// live beside it.)
//
// It stores made-up ciphertext; it never handles key material.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// Run runs the conformance suite. open must return a new, empty store for each call; Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"ServerSecret", testServerSecret},
		{"Accounts", testAccounts},
		{"Devices", testDevices},
		{"ChangePassword", testChangePassword},
		{"Apps", testApps},
		{"Envs", testEnvs},
		{"Commit", testCommit},
		{"CommitConflict", testCommitConflict},
		{"CommitRacing", testCommitRacing},
		{"CommitNoLostUpdate", testCommitNoLostUpdate},
		{"Rotation", testRotation},
		{"CommitRevokesMachines", testCommitRevokesMachines},
		{"Machines", testMachines},
		{"MachineWrapsScoped", testMachineWrapsScoped},
		{"Audit", testAudit},
		{"SignedObjects", testSignedObjects},
		{"AuditBatch", testAuditBatch},
		{"EnvHead", testEnvHead},
		{"Usage", testUsage},
		{"Invites", testInvites},
		{"InviteRace", testInviteRace},
		{"History", testHistory},
		{"AuditPage", testAuditPage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// now is a fixed time with microsecond precision, the precision stores keep.
var now = time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)

func rnd(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func newAccount(email string) (*store.Account, *store.Device) {
	a := &store.Account{
		ID:              rnd(16),
		Email:           email,
		KDF:             store.KDF{T: 3, M: 262144, P: 4, Salt: rnd(16)},
		WrappedAK:       rnd(74),
		AKVersion:       1,
		KeyCheck:        rnd(32),
		LoginVerifier:   rnd(32),
		WrappedSignSeed: rnd(74),
		SignPub:         rnd(32),
		CreatedAt:       now,
	}
	d := &store.Device{KeyID: rnd(8), AccountID: a.ID, Verifier: rnd(32), Name: "laptop", CreatedAt: now}
	return a, d
}

func mkAccount(t *testing.T, s store.Store) (*store.Account, *store.Device) {
	t.Helper()
	a, d := newAccount(fmt.Sprintf("user-%x@example.com", rnd(4)))
	must(t, s.CreateAccount(ctx, a, d), "create account")
	return a, d
}

func mkApp(t *testing.T, s store.Store, acct []byte, name string) *store.App {
	t.Helper()
	a := &store.App{ID: rnd(16), AccountID: acct, Name: name, CreatedAt: now}
	must(t, s.CreateApp(ctx, a), "create app")
	return a
}

func mkEnv(t *testing.T, s store.Store, app *store.App, name string) *store.Env {
	t.Helper()
	e := &store.Env{ID: rnd(16), AppID: app.ID, AccountID: app.AccountID, Name: name, Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}
	must(t, s.CreateEnv(ctx, e), "create env")
	return e
}

func mkMachine(acct []byte, accountWide bool) *store.Machine {
	m := &store.Machine{
		ID: rnd(16), AccountID: acct, Verifier: rnd(32), XPub: rnd(32), Grant: rnd(100), GrantSig: rnd(64),
		PinSignPub: rnd(32), PinMAC: rnd(32), Label: "host:/etc/ov/app.key", AKVersion: 1, CreatedAt: now,
	}
	if accountWide {
		m.AccountWrap = rnd(106)
	}
	return m
}

func rec(blind []byte, version uint64, size int) store.Record {
	return store.Record{Blind: blind, Version: version, Data: rnd(size)}
}

func readEnv(t *testing.T, s store.Store, id []byte, opt store.ReadOptions) *store.EnvView {
	t.Helper()
	v, err := s.ReadEnv(ctx, id, opt)
	must(t, err, "read env")
	return v
}

func testServerSecret(t *testing.T, s store.Store) {
	a, err := s.ServerSecret(ctx)
	must(t, err, "server secret")
	b, err := s.ServerSecret(ctx)
	must(t, err, "server secret again")
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("server secret: %d bytes, stable=%v", len(a), bytes.Equal(a, b))
	}
}

func testAccounts(t *testing.T, s store.Store) {
	a, d := newAccount("  Alice@Example.COM ")
	must(t, s.CreateAccount(ctx, a, d), "create account")

	got, err := s.AccountByEmail(ctx, "alice@example.com")
	must(t, err, "account by email")
	if got.Email != "alice@example.com" {
		t.Errorf("email stored as %q, want normalized", got.Email)
	}
	if !bytes.Equal(got.ID, a.ID) || got.KDF.T != 3 || got.KDF.M != 262144 || got.KDF.P != 4 || !bytes.Equal(got.KDF.Salt, a.KDF.Salt) ||
		!bytes.Equal(got.WrappedAK, a.WrappedAK) || got.AKVersion != 1 || !bytes.Equal(got.KeyCheck, a.KeyCheck) ||
		!bytes.Equal(got.LoginVerifier, a.LoginVerifier) || !bytes.Equal(got.WrappedSignSeed, a.WrappedSignSeed) ||
		!bytes.Equal(got.SignPub, a.SignPub) || !got.CreatedAt.Equal(now) {
		t.Errorf("account round trip: got %+v", got)
	}
	byID, err := s.Account(ctx, a.ID)
	must(t, err, "account by id")
	if byID.Email != got.Email {
		t.Errorf("account by id: email %q", byID.Email)
	}
	if _, err := s.AccountByEmail(ctx, "ALICE@EXAMPLE.COM"); err != nil {
		t.Errorf("lookup is not case-insensitive: %v", err)
	}

	// Same email in another case: taken.
	a2, d2 := newAccount("alice@EXAMPLE.com")
	wantErr(t, s.CreateAccount(ctx, a2, d2), store.ErrExists, "duplicate email")
	// Same id: taken.
	a3, d3 := newAccount("bob@example.com")
	a3.ID = a.ID
	wantErr(t, s.CreateAccount(ctx, a3, d3), store.ErrExists, "duplicate id")
	// Same first device key id: taken, and nothing is left behind.
	a4, d4 := newAccount("carol@example.com")
	d4.KeyID = d.KeyID
	wantErr(t, s.CreateAccount(ctx, a4, d4), store.ErrExists, "duplicate device key")
	_, err = s.AccountByEmail(ctx, "carol@example.com")
	wantErr(t, err, store.ErrNotFound, "account of a failed create")

	_, err = s.Account(ctx, rnd(16))
	wantErr(t, err, store.ErrNotFound, "unknown account")
	_, err = s.AccountByEmail(ctx, "nobody@example.com")
	wantErr(t, err, store.ErrNotFound, "unknown email")
}

func testDevices(t *testing.T, s store.Store) {
	a, first := mkAccount(t, s)
	d, err := s.Device(ctx, first.KeyID)
	must(t, err, "read first device")
	if !bytes.Equal(d.AccountID, a.ID) || !bytes.Equal(d.Verifier, first.Verifier) || d.Name != "laptop" || d.Revoked() || !d.LastUsedAt.IsZero() {
		t.Fatalf("first device: %+v", d)
	}
	second := &store.Device{KeyID: rnd(8), AccountID: a.ID, Verifier: rnd(32), Name: "server", CreatedAt: now.Add(time.Second)}
	must(t, s.AddDevice(ctx, second), "add device")
	wantErr(t, s.AddDevice(ctx, second), store.ErrExists, "add device twice")
	orphan := &store.Device{KeyID: rnd(8), AccountID: rnd(16), Verifier: rnd(32), Name: "x", CreatedAt: now}
	wantErr(t, s.AddDevice(ctx, orphan), store.ErrNotFound, "device of unknown account")

	list, err := s.Devices(ctx, a.ID)
	must(t, err, "list devices")
	if len(list) != 2 || !bytes.Equal(list[0].KeyID, first.KeyID) || !bytes.Equal(list[1].KeyID, second.KeyID) {
		t.Fatalf("devices: %+v", list)
	}

	used := now.Add(time.Minute)
	must(t, s.TouchDevice(ctx, second.KeyID, used), "touch device")
	wantErr(t, s.TouchDevice(ctx, rnd(8), used), store.ErrNotFound, "touch unknown device")
	d, _ = s.Device(ctx, second.KeyID)
	if !d.LastUsedAt.Equal(used) {
		t.Errorf("last used %v, want %v", d.LastUsedAt, used)
	}

	other, _ := mkAccount(t, s)
	wantErr(t, s.RevokeDevice(ctx, other.ID, second.KeyID, used), store.ErrNotFound, "revoke another account's device")
	revoked := now.Add(time.Hour)
	must(t, s.RevokeDevice(ctx, a.ID, second.KeyID, revoked), "revoke device")
	must(t, s.RevokeDevice(ctx, a.ID, second.KeyID, revoked.Add(time.Hour)), "revoke device again")
	d, _ = s.Device(ctx, second.KeyID)
	if !d.Revoked() || !d.RevokedAt.Equal(revoked) {
		t.Errorf("revoked at %v, want %v (the first revocation)", d.RevokedAt, revoked)
	}
	d, _ = s.Device(ctx, first.KeyID)
	if d.Revoked() {
		t.Errorf("revoking one device revoked another")
	}
	_, err = s.Device(ctx, rnd(8))
	wantErr(t, err, store.ErrNotFound, "unknown device")
}

func testChangePassword(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	app := mkApp(t, s, a.ID, "web")
	env := mkEnv(t, s, app, "prod")
	m := mkMachine(a.ID, false)
	must(t, s.CreateMachine(ctx, m, []store.MachineWrap{{AppID: app.ID, EnvID: env.ID, Epoch: 1, Wrap: rnd(106)}}), "create machine")

	c := &store.PasswordChange{
		AccountID: a.ID, OldLoginVerifier: rnd(32), KDF: store.KDF{T: 4, M: 524288, P: 2, Salt: rnd(16)},
		WrappedAK: rnd(74), AKVersion: 1, KeyCheck: rnd(32), LoginVerifier: rnd(32), At: now.Add(time.Hour),
	}
	wantErr(t, s.ChangePassword(ctx, c), store.ErrConflict, "change with a wrong old verifier")
	c.OldLoginVerifier = a.LoginVerifier
	must(t, s.ChangePassword(ctx, c), "change password")
	got, _ := s.Account(ctx, a.ID)
	if !bytes.Equal(got.LoginVerifier, c.LoginVerifier) || !bytes.Equal(got.WrappedAK, c.WrappedAK) || got.KDF.T != 4 ||
		got.KDF.M != 524288 || got.KDF.P != 2 || !bytes.Equal(got.KDF.Salt, c.KDF.Salt) || !bytes.Equal(got.KeyCheck, c.KeyCheck) {
		t.Fatalf("after change: %+v", got)
	}
	// The old verifier no longer matches: a replay of the same change conflicts.
	wantErr(t, s.ChangePassword(ctx, c), store.ErrConflict, "replayed change")
	if _, err := s.Machine(ctx, m.ID); err != nil {
		t.Fatalf("machine gone without RevokeMachines: %v", err)
	}

	c2 := *c
	c2.OldLoginVerifier, c2.LoginVerifier, c2.RevokeMachines = c.LoginVerifier, rnd(32), true
	must(t, s.ChangePassword(ctx, &c2), "change password revoking machines")
	_, err := s.Machine(ctx, m.ID)
	wantErr(t, err, store.ErrNotFound, "machine after revoking change")
	if v := readEnv(t, s, env.ID, store.ReadOptions{MachineID: m.ID}); v.MachineWrap != nil {
		t.Fatalf("wrap of a revoked machine still served")
	}
	c2.AccountID = rnd(16)
	wantErr(t, s.ChangePassword(ctx, &c2), store.ErrNotFound, "change of unknown account")
}

func testApps(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	web := mkApp(t, s, a.ID, "web")
	api := mkApp(t, s, a.ID, "api")
	mkApp(t, s, b.ID, "web") // the same name in another account is fine
	wantErr(t, s.CreateApp(ctx, &store.App{ID: rnd(16), AccountID: a.ID, Name: "web", CreatedAt: now}), store.ErrExists, "duplicate name")
	wantErr(t, s.CreateApp(ctx, &store.App{ID: web.ID, AccountID: a.ID, Name: "other", CreatedAt: now}), store.ErrExists, "duplicate id")
	wantErr(t, s.CreateApp(ctx, &store.App{ID: rnd(16), AccountID: rnd(16), Name: "x", CreatedAt: now}), store.ErrNotFound, "unknown account")
	mkEnv(t, s, web, "staging")
	mkEnv(t, s, web, "prod")

	apps, err := s.Apps(ctx, a.ID)
	must(t, err, "list apps")
	if len(apps) != 2 || apps[0].Name != "api" || apps[1].Name != "web" || !bytes.Equal(apps[0].ID, api.ID) {
		t.Fatalf("apps: %+v", apps)
	}
	if len(apps[0].Envs) != 0 || len(apps[1].Envs) != 2 || apps[1].Envs[0].Name != "prod" || apps[1].Envs[1].Name != "staging" {
		t.Fatalf("envs of apps: %+v", apps)
	}
	if !apps[1].CreatedAt.Equal(now) || !bytes.Equal(apps[1].AccountID, a.ID) {
		t.Errorf("app fields: %+v", apps[1])
	}
	none, err := s.Apps(ctx, rnd(16))
	must(t, err, "list apps of unknown account")
	if len(none) != 0 {
		t.Errorf("apps of unknown account: %+v", none)
	}
}

func testEnvs(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	web := mkApp(t, s, a.ID, "web")
	api := mkApp(t, s, a.ID, "api")
	other := mkApp(t, s, b.ID, "web")
	prod := mkEnv(t, s, web, "prod")
	mkEnv(t, s, api, "prod") // same name in another app is fine
	wantErr(t, s.CreateEnv(ctx, &store.Env{ID: rnd(16), AppID: web.ID, AccountID: a.ID, Name: "prod", Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}),
		store.ErrExists, "duplicate env name")
	wantErr(t, s.CreateEnv(ctx, &store.Env{ID: prod.ID, AppID: web.ID, AccountID: a.ID, Name: "x", Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}),
		store.ErrExists, "duplicate env id")
	wantErr(t, s.CreateEnv(ctx, &store.Env{ID: rnd(16), AppID: other.ID, AccountID: a.ID, Name: "x", Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}),
		store.ErrNotFound, "env in another account's app")
	wantErr(t, s.CreateEnv(ctx, &store.Env{ID: rnd(16), AppID: rnd(16), AccountID: a.ID, Name: "x", Epoch: 1, WrappedEK: rnd(74), CreatedAt: now}),
		store.ErrNotFound, "env in unknown app")

	v := readEnv(t, s, prod.ID, store.ReadOptions{Records: store.RecordsFull})
	e := v.Env
	if !bytes.Equal(e.ID, prod.ID) || !bytes.Equal(e.AppID, web.ID) || !bytes.Equal(e.AccountID, a.ID) || e.AppName != "web" ||
		e.Name != "prod" || e.Epoch != 1 || !bytes.Equal(e.WrappedEK, prod.WrappedEK) || e.Seq != 0 || len(e.Manifest) != 0 ||
		e.Count != 0 || !e.CreatedAt.Equal(now) || !e.UpdatedAt.Equal(now) || len(v.Records) != 0 {
		t.Fatalf("new env: %+v", v)
	}
	_, err := s.ReadEnv(ctx, rnd(16), store.ReadOptions{})
	wantErr(t, err, store.ErrNotFound, "read unknown env")
}

func testCommit(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	b1, b2, b3 := rnd(16), rnd(16), rnd(16)
	r1, r2 := rec(b1, 1, 100), rec(b2, 1, 2000)
	c := &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(200), ManifestSig: rnd(64),
		Put: []store.Record{r1, r2}, At: now.Add(time.Minute)}
	must(t, s.CommitEnv(ctx, c), "first commit")

	v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsFull})
	if v.Env.Seq != 1 || v.Env.Count != 2 || !bytes.Equal(v.Env.Manifest, c.Manifest) || !bytes.Equal(v.Env.ManifestSig, c.ManifestSig) ||
		!v.Env.UpdatedAt.Equal(c.At) || len(v.Records) != 2 {
		t.Fatalf("after first commit: %+v", v.Env)
	}
	for _, r := range v.Records {
		want := r1
		if bytes.Equal(r.Blind, b2) {
			want = r2
		}
		h := sha256.Sum256(want.Data)
		if !bytes.Equal(r.Data, want.Data) || r.Version != want.Version || !bytes.Equal(r.Hash, h[:]) || r.Size != len(want.Data) {
			t.Fatalf("record %x round trip", r.Blind)
		}
	}
	if bytes.Compare(v.Records[0].Blind, v.Records[1].Blind) >= 0 {
		t.Errorf("records not sorted by blind id")
	}

	// Replace one, delete one, add one.
	r1b, r3 := rec(b1, 2, 50), rec(b3, 1, 10)
	c2 := &store.Commit{EnvID: env.ID, ExpectedSeq: 1, Seq: 2, Manifest: rnd(200), ManifestSig: rnd(64),
		Put: []store.Record{r1b, r3}, Delete: [][]byte{b2}, At: now.Add(2 * time.Minute)}
	must(t, s.CommitEnv(ctx, c2), "second commit")
	idx := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsIndex})
	if idx.Env.Seq != 2 || idx.Env.Count != 2 || len(idx.Records) != 2 {
		t.Fatalf("after second commit: %+v", idx)
	}
	for _, r := range idx.Records {
		if len(r.Data) != 0 {
			t.Errorf("index read returned record bytes")
		}
		if want := map[bool]int{true: len(r1b.Data), false: len(r3.Data)}[bytes.Equal(r.Blind, b1)]; r.Size != want {
			t.Errorf("index read: size %d, want %d", r.Size, want)
		}
		switch {
		case bytes.Equal(r.Blind, b1):
			h := sha256.Sum256(r1b.Data)
			if r.Version != 2 || !bytes.Equal(r.Hash, h[:]) {
				t.Errorf("replaced record: version %d", r.Version)
			}
		case bytes.Equal(r.Blind, b3):
		default:
			t.Errorf("unexpected record %x", r.Blind)
		}
	}
	// Deleting everything leaves an empty env at a higher seq.
	c3 := &store.Commit{EnvID: env.ID, ExpectedSeq: 2, Seq: 3, Manifest: rnd(100), ManifestSig: rnd(64), Delete: [][]byte{b1, b3}, At: now}
	must(t, s.CommitEnv(ctx, c3), "third commit")
	if v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsFull}); v.Env.Count != 0 || len(v.Records) != 0 || v.Env.Seq != 3 {
		t.Fatalf("after deleting all: %+v", v)
	}
	wantErr(t, s.CommitEnv(ctx, &store.Commit{EnvID: rnd(16), ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64), At: now}),
		store.ErrNotFound, "commit to unknown env")
}

func testCommitConflict(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	blind := rnd(16)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64),
		Put: []store.Record{rec(blind, 1, 10)}, At: now}), "commit")
	stale := &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64),
		Put: []store.Record{rec(blind, 9, 10), rec(rnd(16), 1, 10)}, Delete: [][]byte{}, At: now}
	wantErr(t, s.CommitEnv(ctx, stale), store.ErrConflict, "stale commit")
	v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsFull})
	if v.Env.Seq != 1 || len(v.Records) != 1 || v.Records[0].Version != 1 {
		t.Fatalf("a stale commit changed the env: %+v", v)
	}
	wantErr(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 5, Seq: 6, Manifest: rnd(10), ManifestSig: rnd(64), At: now}),
		store.ErrConflict, "commit from the future")
}

// testCommitRacing starts N writers on the same seq at once: exactly one wins.
func testCommitRacing(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	const n = 8
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: []byte{byte(i)}, ManifestSig: rnd(64),
				Put: []store.Record{rec(rnd(16), 1, 32)}, At: now})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrConflict):
				conflicts.Add(1)
			default:
				t.Errorf("racing commit: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != n-1 {
		t.Fatalf("%d wins and %d conflicts, want 1 and %d", wins.Load(), conflicts.Load(), n-1)
	}
	if v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsIndex}); v.Env.Seq != 1 || len(v.Records) != 1 {
		t.Fatalf("after the race: seq %d, %d records", v.Env.Seq, len(v.Records))
	}
}

// testCommitNoLostUpdate runs writers that each read, modify and commit with retries: every
// successful commit must be visible at the end.
func testCommitNoLostUpdate(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	const writers, rounds = 4, 6
	var wg sync.WaitGroup
	var conflicts atomic.Int32
	blinds := make([][]byte, writers)
	for i := range writers {
		blinds[i] = rnd(16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 1; r <= rounds; {
				v, err := s.ReadEnv(ctx, env.ID, store.ReadOptions{Records: store.RecordsIndex})
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				err = s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: v.Env.Seq, Seq: v.Env.Seq + 1, Manifest: rnd(16),
					ManifestSig: rnd(64), Put: []store.Record{rec(blinds[i], uint64(r), 16)}, At: now})
				switch {
				case err == nil:
					r++
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("commit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsIndex})
	if v.Env.Seq != writers*rounds || len(v.Records) != writers || v.Env.Count != writers {
		t.Fatalf("seq %d with %d records, want %d with %d", v.Env.Seq, len(v.Records), writers*rounds, writers)
	}
	for _, r := range v.Records {
		if r.Version != rounds {
			t.Errorf("record %x at version %d, want %d: an update was lost", r.Blind, r.Version, rounds)
		}
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}

func testRotation(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	app := mkApp(t, s, a.ID, "web")
	env := mkEnv(t, s, app, "prod")
	other := mkEnv(t, s, app, "staging")
	keep, drop := mkMachine(a.ID, false), mkMachine(a.ID, false)
	must(t, s.CreateMachine(ctx, keep, []store.MachineWrap{
		{AppID: app.ID, EnvID: env.ID, Epoch: 1, Wrap: rnd(106)},
		{AppID: app.ID, EnvID: other.ID, Epoch: 1, Wrap: rnd(106)},
	}), "create machine")
	must(t, s.CreateMachine(ctx, drop, []store.MachineWrap{{AppID: app.ID, EnvID: env.ID, Epoch: 1, Wrap: rnd(106)}}), "create machine")
	old := []store.Record{rec(rnd(16), 1, 10), rec(rnd(16), 1, 10)}
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64), Put: old, At: now}), "commit")

	newEK, newWrap := rnd(74), rnd(106)
	fresh := []store.Record{rec(rnd(16), 2, 10), rec(rnd(16), 2, 10), rec(rnd(16), 1, 10)}
	rot := &store.Commit{EnvID: env.ID, ExpectedSeq: 1, Seq: 2, Manifest: rnd(10), ManifestSig: rnd(64), Put: fresh, At: now,
		Rotate:         &store.Rotation{Epoch: 2, WrappedEK: newEK, MachineWraps: []store.MachineWrap{{MachineID: keep.ID, AppID: app.ID, EnvID: env.ID, Epoch: 2, Wrap: newWrap}}},
		RevokeMachines: [][]byte{drop.ID}}
	must(t, s.CommitEnv(ctx, rot), "rotate")

	v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsFull, MachineID: keep.ID})
	if v.Env.Epoch != 2 || !bytes.Equal(v.Env.WrappedEK, newEK) || v.Env.Seq != 2 || v.Env.Count != 3 || len(v.Records) != 3 {
		t.Fatalf("after rotation: %+v", v.Env)
	}
	for _, r := range v.Records {
		for _, o := range old {
			if bytes.Equal(r.Blind, o.Blind) {
				t.Fatalf("record of the old epoch survived the rotation")
			}
		}
	}
	if !bytes.Equal(v.MachineWrap, newWrap) {
		t.Fatalf("kept machine's wrap of the new epoch not served")
	}
	wraps, err := s.MachineWraps(ctx, keep.ID)
	must(t, err, "list wraps")
	if len(wraps) != 2 { // the new one for prod, the untouched one for staging
		t.Fatalf("kept machine has %d wraps, want 2: %+v", len(wraps), wraps)
	}
	for _, w := range wraps {
		if bytes.Equal(w.EnvID, env.ID) && w.Epoch != 2 {
			t.Fatalf("wrap of the old epoch survived")
		}
	}
	_, err = s.Machine(ctx, drop.ID)
	wantErr(t, err, store.ErrNotFound, "machine revoked in the rotation")

	// An epoch cannot be used twice.
	again := &store.Commit{EnvID: env.ID, ExpectedSeq: 2, Seq: 3, Manifest: rnd(10), ManifestSig: rnd(64), At: now,
		Rotate: &store.Rotation{Epoch: 2, WrappedEK: rnd(74)}}
	wantErr(t, s.CommitEnv(ctx, again), store.ErrConflict, "rotation to a used epoch")
	// A failed rotation (wrap for an unknown machine) changes nothing.
	bad := &store.Commit{EnvID: env.ID, ExpectedSeq: 2, Seq: 3, Manifest: rnd(10), ManifestSig: rnd(64), At: now,
		Put:    []store.Record{rec(rnd(16), 3, 10)},
		Rotate: &store.Rotation{Epoch: 3, WrappedEK: rnd(74), MachineWraps: []store.MachineWrap{{MachineID: rnd(16), AppID: app.ID, EnvID: env.ID, Epoch: 3, Wrap: rnd(106)}}}}
	wantErr(t, s.CommitEnv(ctx, bad), store.ErrNotFound, "rotation with a wrap for an unknown machine")
	v2 := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsFull, MachineID: keep.ID})
	if v2.Env.Epoch != 2 || v2.Env.Seq != 2 || len(v2.Records) != 3 || !bytes.Equal(v2.MachineWrap, newWrap) {
		t.Fatalf("a failed rotation left changes: %+v", v2.Env)
	}
}

func testCommitRevokesMachines(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	mine, theirs := mkMachine(a.ID, true), mkMachine(b.ID, true)
	must(t, s.CreateMachine(ctx, mine, nil), "create machine")
	must(t, s.CreateMachine(ctx, theirs, nil), "create machine")
	c := &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64), At: now,
		RevokeMachines: [][]byte{mine.ID, theirs.ID}}
	wantErr(t, s.CommitEnv(ctx, c), store.ErrNotFound, "revoking another account's machine")
	if _, err := s.Machine(ctx, mine.ID); err != nil {
		t.Fatalf("failed commit revoked a machine: %v", err)
	}
	if v := readEnv(t, s, env.ID, store.ReadOptions{}); v.Env.Seq != 0 {
		t.Fatalf("failed commit moved seq to %d", v.Env.Seq)
	}
	c.RevokeMachines = [][]byte{mine.ID}
	must(t, s.CommitEnv(ctx, c), "commit revoking a machine")
	_, err := s.Machine(ctx, mine.ID)
	wantErr(t, err, store.ErrNotFound, "revoked machine")
}

func testSignedObjects(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	_, err := s.Signed(ctx, a.ID, "revocations", "")
	wantErr(t, err, store.ErrNotFound, "read a signed object never stored")
	o := &store.SignedObject{AccountID: a.ID, Kind: "revocations", Version: 1, Raw: []byte("one"), Sig: rnd(64), UpdatedAt: now}
	must(t, s.PutSigned(ctx, o), "put version 1")
	got, err := s.Signed(ctx, a.ID, "revocations", "")
	must(t, err, "read version 1")
	if got.Version != 1 || string(got.Raw) != "one" || !bytes.Equal(got.Sig, o.Sig) || !got.UpdatedAt.Equal(now) {
		t.Fatalf("read back %+v, want %+v", got, o)
	}
	// The version only grows: an equal or older one is a conflict and changes nothing.
	wantErr(t, s.PutSigned(ctx, &store.SignedObject{AccountID: a.ID, Kind: "revocations", Version: 1, Raw: []byte("other"), Sig: rnd(64), UpdatedAt: now}), store.ErrConflict, "put the same version again")
	wantErr(t, s.PutSigned(ctx, &store.SignedObject{AccountID: a.ID, Kind: "revocations", Version: 0, Raw: []byte("old"), Sig: rnd(64), UpdatedAt: now}), store.ErrConflict, "put an older version")
	must(t, s.PutSigned(ctx, &store.SignedObject{AccountID: a.ID, Kind: "revocations", Version: 7, Raw: []byte("seven"), Sig: rnd(64), UpdatedAt: now.Add(time.Second)}), "put version 7")
	got, err = s.Signed(ctx, a.ID, "revocations", "")
	must(t, err, "read version 7")
	if got.Version != 7 || string(got.Raw) != "seven" {
		t.Fatalf("read back version %d %q, want 7 \"seven\"", got.Version, got.Raw)
	}
	// Kind, key and account each name a separate object.
	must(t, s.PutSigned(ctx, &store.SignedObject{AccountID: a.ID, Kind: "env-access", Key: "x/1", Version: 1, Raw: []byte("access"), Sig: rnd(64), UpdatedAt: now}), "put another kind")
	_, err = s.Signed(ctx, a.ID, "env-access", "x/2")
	wantErr(t, err, store.ErrNotFound, "read another key")
	_, err = s.Signed(ctx, b.ID, "revocations", "")
	wantErr(t, err, store.ErrNotFound, "read another account's object")
	wantErr(t, s.PutSigned(ctx, &store.SignedObject{AccountID: rnd(16), Kind: "revocations", Version: 1, Raw: []byte("x"), Sig: rnd(64), UpdatedAt: now}), store.ErrNotFound, "put for an unknown account")
}

func testMachines(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	app := mkApp(t, s, a.ID, "web")
	env := mkEnv(t, s, app, "prod")
	foreign := mkEnv(t, s, mkApp(t, s, b.ID, "web"), "prod")

	wide := mkMachine(a.ID, true)
	wide.NotAfter = now.Add(24 * time.Hour)
	must(t, s.CreateMachine(ctx, wide, nil), "create account-wide machine")
	wantErr(t, s.CreateMachine(ctx, wide, nil), store.ErrExists, "create machine twice")
	wantErr(t, s.CreateMachine(ctx, mkMachine(rnd(16), true), nil), store.ErrNotFound, "machine of unknown account")
	bad := mkMachine(a.ID, false)
	wantErr(t, s.CreateMachine(ctx, bad, []store.MachineWrap{{AppID: foreign.AppID, EnvID: foreign.ID, Epoch: 1, Wrap: rnd(106)}}),
		store.ErrNotFound, "wrap for another account's env")
	_, err := s.Machine(ctx, bad.ID)
	wantErr(t, err, store.ErrNotFound, "machine of a failed create")

	got, err := s.Machine(ctx, wide.ID)
	must(t, err, "read machine")
	if !got.AccountWide() || !bytes.Equal(got.AccountWrap, wide.AccountWrap) || !got.NotAfter.Equal(wide.NotAfter) || got.Label != wide.Label ||
		!bytes.Equal(got.Verifier, wide.Verifier) || !bytes.Equal(got.XPub, wide.XPub) || !bytes.Equal(got.Grant, wide.Grant) ||
		!bytes.Equal(got.GrantSig, wide.GrantSig) || !bytes.Equal(got.PinSignPub, wide.PinSignPub) || !bytes.Equal(got.PinMAC, wide.PinMAC) ||
		got.AKVersion != 1 || !got.CreatedAt.Equal(now) || !got.LastSeenAt.IsZero() {
		t.Fatalf("machine round trip: %+v", got)
	}
	scoped := mkMachine(a.ID, false)
	scoped.CreatedAt = now.Add(time.Second)
	must(t, s.CreateMachine(ctx, scoped, []store.MachineWrap{{AppID: app.ID, EnvID: env.ID, Epoch: 1, Wrap: rnd(106)}}), "create scoped machine")
	got, _ = s.Machine(ctx, scoped.ID)
	if got.AccountWide() || !got.NotAfter.IsZero() {
		t.Fatalf("scoped machine: %+v", got)
	}
	list, err := s.Machines(ctx, a.ID)
	must(t, err, "list machines")
	if len(list) != 2 || !bytes.Equal(list[0].ID, wide.ID) || !bytes.Equal(list[1].ID, scoped.ID) {
		t.Fatalf("machines: %+v", list)
	}
	seen := now.Add(time.Hour)
	must(t, s.TouchMachine(ctx, scoped.ID, seen), "touch machine")
	wantErr(t, s.TouchMachine(ctx, rnd(16), seen), store.ErrNotFound, "touch unknown machine")
	got, _ = s.Machine(ctx, scoped.ID)
	if !got.LastSeenAt.Equal(seen) {
		t.Errorf("last seen %v", got.LastSeenAt)
	}
	wantErr(t, s.DeleteMachine(ctx, b.ID, scoped.ID), store.ErrNotFound, "delete another account's machine")
	must(t, s.DeleteMachine(ctx, a.ID, scoped.ID), "delete machine")
	wantErr(t, s.DeleteMachine(ctx, a.ID, scoped.ID), store.ErrNotFound, "delete machine twice")
	wraps, err := s.MachineWraps(ctx, scoped.ID)
	must(t, err, "list wraps of a deleted machine")
	if len(wraps) != 0 {
		t.Fatalf("wraps survived their machine")
	}
}

func testMachineWrapsScoped(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	app := mkApp(t, s, a.ID, "web")
	prod, staging := mkEnv(t, s, app, "prod"), mkEnv(t, s, app, "staging")
	m := mkMachine(a.ID, false)
	w := rnd(106)
	must(t, s.CreateMachine(ctx, m, []store.MachineWrap{{AppID: app.ID, EnvID: prod.ID, Epoch: 1, Wrap: w}}), "create machine")
	if v := readEnv(t, s, prod.ID, store.ReadOptions{MachineID: m.ID}); !bytes.Equal(v.MachineWrap, w) {
		t.Fatalf("wrap for prod not served")
	}
	if v := readEnv(t, s, staging.ID, store.ReadOptions{MachineID: m.ID}); v.MachineWrap != nil {
		t.Fatalf("wrap served for an env out of scope")
	}
	// Replace: now staging only.
	w2 := rnd(106)
	must(t, s.ReplaceMachineWraps(ctx, a.ID, m.ID, []store.MachineWrap{{AppID: app.ID, EnvID: staging.ID, Epoch: 1, Wrap: w2}}), "replace wraps")
	if v := readEnv(t, s, prod.ID, store.ReadOptions{MachineID: m.ID}); v.MachineWrap != nil {
		t.Fatalf("replaced wrap still served")
	}
	if v := readEnv(t, s, staging.ID, store.ReadOptions{MachineID: m.ID}); !bytes.Equal(v.MachineWrap, w2) {
		t.Fatalf("new wrap not served")
	}
	wantErr(t, s.ReplaceMachineWraps(ctx, b.ID, m.ID, nil), store.ErrNotFound, "replace wraps of another account's machine")
	// A wrap whose app id does not match its env is refused, and the old wraps stay.
	wantErr(t, s.ReplaceMachineWraps(ctx, a.ID, m.ID, []store.MachineWrap{{AppID: rnd(16), EnvID: prod.ID, Epoch: 1, Wrap: w}}),
		store.ErrNotFound, "wrap with a wrong app id")
	if v := readEnv(t, s, staging.ID, store.ReadOptions{MachineID: m.ID}); !bytes.Equal(v.MachineWrap, w2) {
		t.Fatalf("failed replace dropped the old wraps")
	}
	// A wrap of an older epoch is not served once the env moves on.
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: staging.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64), At: now,
		Rotate: &store.Rotation{Epoch: 2, WrappedEK: rnd(74)}}), "rotate staging")
	if v := readEnv(t, s, staging.ID, store.ReadOptions{MachineID: m.ID}); v.MachineWrap != nil {
		t.Fatalf("wrap of epoch 1 served at epoch 2")
	}
}

func testAudit(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	b, _ := mkAccount(t, s)
	var ids []int64
	for i := range 5 {
		e := &store.AuditEntry{AccountID: a.ID, Time: now.Add(time.Duration(i) * time.Second), Actor: "device:0102030405060708",
			Action: fmt.Sprintf("action-%d", i), Target: "env:00", RemoteAddr: "127.0.0.1", Result: "ok"}
		must(t, s.AppendAudit(ctx, e), "append audit")
		ids = append(ids, e.ID)
		must(t, s.AppendAudit(ctx, &store.AuditEntry{AccountID: b.ID, Time: now, Actor: "anonymous", Action: "other", Result: "ok"}), "append audit")
		must(t, s.AppendAudit(ctx, &store.AuditEntry{Time: now, Actor: "anonymous", Action: "auth.login", Result: "unauthorized"}), "append anonymous")
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("audit ids not increasing: %v", ids)
		}
	}
	list, err := s.Audit(ctx, a.ID, 100)
	must(t, err, "list audit")
	if len(list) != 5 {
		t.Fatalf("%d entries, want 5 (other accounts' and anonymous entries must not show)", len(list))
	}
	for i, e := range list {
		want := 4 - i
		if e.Action != fmt.Sprintf("action-%d", want) || e.ID != ids[want] || !e.Time.Equal(now.Add(time.Duration(want)*time.Second)) ||
			e.Actor != "device:0102030405060708" || e.Target != "env:00" || e.RemoteAddr != "127.0.0.1" || e.Result != "ok" ||
			!bytes.Equal(e.AccountID, a.ID) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	few, err := s.Audit(ctx, a.ID, 2)
	must(t, err, "list audit with limit")
	if len(few) != 2 || few[0].ID != ids[4] {
		t.Fatalf("limit: %+v", few)
	}
}

// RunReopen checks that a database keeps its data and its server secret across a close and two
// reopens, which also runs the implementation's migrations on an up-to-date schema (they must be
// idempotent). open must open the same database every time it is called.
func RunReopen(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	a, d := mkAccount(t, s)
	env := mkEnv(t, s, mkApp(t, s, a.ID, "web"), "prod")
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64),
		Put: []store.Record{rec(rnd(16), 1, 10)}, At: now}), "commit")
	must(t, s.AppendAudit(ctx, &store.AuditEntry{AccountID: a.ID, Time: now, Actor: "anonymous", Action: "x", Result: "ok"}), "append audit")
	secret, err := s.ServerSecret(ctx)
	must(t, err, "server secret")
	must(t, s.Close(), "close")
	for i := range 2 {
		s := open(t)
		if _, err := s.Device(ctx, d.KeyID); err != nil {
			t.Fatalf("reopen %d: device lost: %v", i, err)
		}
		v, err := s.ReadEnv(ctx, env.ID, store.ReadOptions{Records: store.RecordsFull})
		if err != nil || v.Env.Seq != 1 || len(v.Records) != 1 {
			t.Fatalf("reopen %d: env lost: %v", i, err)
		}
		if l, err := s.Audit(ctx, a.ID, 10); err != nil || len(l) != 1 {
			t.Fatalf("reopen %d: audit lost: %v", i, err)
		}
		again, err := s.ServerSecret(ctx)
		if err != nil || !bytes.Equal(again, secret) {
			t.Fatalf("reopen %d: server secret changed (%v)", i, err)
		}
		must(t, s.Close(), "close")
	}
}
