// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

func testAuditBatch(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	must(t, s.AppendAuditBatch(ctx, nil), "append empty batch")
	var batch []*store.AuditEntry
	for i := range 150 { // more than one INSERT statement
		batch = append(batch, &store.AuditEntry{AccountID: a.ID, Time: now.Add(time.Duration(i) * time.Millisecond), Actor: "machine:00",
			Action: "env.read", Target: fmt.Sprintf("env:%03d", i), RemoteAddr: "127.0.0.1", Result: "ok"})
	}
	batch = append(batch, &store.AuditEntry{Time: now, Actor: "anonymous", Action: "auth", Result: "unauthorized"})
	must(t, s.AppendAuditBatch(ctx, batch), "append batch")
	for i := 1; i < len(batch); i++ {
		if batch[i].ID <= batch[i-1].ID {
			t.Fatalf("batch ids not increasing at %d: %d after %d", i, batch[i].ID, batch[i-1].ID)
		}
	}
	list, err := s.Audit(ctx, a.ID, 100)
	must(t, err, "list audit")
	if len(list) != 100 || list[0].ID != batch[149].ID {
		t.Fatalf("after a batch of 150: %d entries, newest %+v", len(list), list[0])
	}
	all, err := s.Audit(ctx, a.ID, 1000)
	must(t, err, "list audit")
	for i, e := range all {
		b := batch[149-i]
		if e.ID != b.ID || e.Action != b.Action || e.Target != b.Target || !e.Time.Equal(b.Time) || e.Actor != b.Actor {
			t.Fatalf("entry %d: %+v, want %+v", i, e, *b)
		}
	}
	live, err := s.MachineLive(ctx, rnd(16), rnd(32))
	must(t, err, "machine live")
	if live {
		t.Fatal("an unknown machine is live")
	}
}

func testEnvHead(t *testing.T, s store.Store) {
	a, _ := mkAccount(t, s)
	app := mkApp(t, s, a.ID, "web")
	e := mkEnv(t, s, app, "prod")
	_, err := s.EnvHead(ctx, rnd(16), nil, nil)
	wantErr(t, err, store.ErrNotFound, "head of a missing env")
	h, err := s.EnvHead(ctx, e.ID, nil, nil)
	must(t, err, "head")
	if !bytes.Equal(h.AccountID, a.ID) || h.Seq != 0 || h.Epoch != 1 || h.MachineWrap != nil || h.MachineLive {
		t.Fatalf("fresh head: %+v", h)
	}
	m := mkMachine(a.ID, false)
	wrap := rnd(106)
	must(t, s.CreateMachine(ctx, m, []store.MachineWrap{{MachineID: m.ID, AppID: app.ID, EnvID: e.ID, Epoch: 1, Wrap: wrap}}), "create machine")
	sig := rnd(64)
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: e.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(50), ManifestSig: sig,
		Put: []store.Record{rec(rnd(16), 1, 40)}, At: now.Add(time.Second)}), "commit")
	h, err = s.EnvHead(ctx, e.ID, m.ID, m.Verifier)
	must(t, err, "head after commit")
	if h.Seq != 1 || !bytes.Equal(h.ManifestSig, sig) || !bytes.Equal(h.MachineWrap, wrap) || !h.UpdatedAt.Equal(now.Add(time.Second)) || !h.MachineLive {
		t.Fatalf("head after commit: %+v", h)
	}
	// A wrong verifier is not live (the wrap is still told: the caller must check MachineLive).
	h, err = s.EnvHead(ctx, e.ID, m.ID, rnd(32))
	must(t, err, "head with a wrong verifier")
	if h.MachineLive {
		t.Fatal("head says a machine with a wrong verifier is live")
	}
	// Another machine, or a wrap of an old epoch, gives no wrap.
	h, err = s.EnvHead(ctx, e.ID, rnd(16), rnd(32))
	must(t, err, "head for another machine")
	if h.MachineWrap != nil || h.MachineLive {
		t.Fatal("head gave a wrap to a machine that has none")
	}
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: e.ID, ExpectedSeq: 1, Seq: 2, Manifest: rnd(50), ManifestSig: rnd(64),
		Rotate: &store.Rotation{Epoch: 2, WrappedEK: rnd(74)}, At: now}), "rotate")
	h, err = s.EnvHead(ctx, e.ID, m.ID, m.Verifier)
	must(t, err, "head after rotation")
	if h.Epoch != 2 || h.MachineWrap != nil || !h.MachineLive || h.AccessRaw != nil || h.AccessSig != nil {
		t.Fatalf("after a rotation without a wrap for the machine: %+v", h)
	}
	// The head carries the current epoch's allowed set, and only that one: not another epoch's,
	// not another env's, not another kind.
	put := func(kind, key string, raw []byte) {
		must(t, s.PutSigned(ctx, &store.SignedObject{AccountID: a.ID, Kind: kind, Key: key, Version: 1, Raw: raw, Sig: rnd(64), UpdatedAt: now}), "put signed "+key)
	}
	put(store.EnvAccessKind, store.EnvAccessKey(e.ID, 1), rnd(40))
	put(store.EnvAccessKind, store.EnvAccessKey(rnd(16), 2), rnd(40))
	put("other-kind", store.EnvAccessKey(e.ID, 2), rnd(40))
	if h, err = s.EnvHead(ctx, e.ID, nil, nil); err != nil || h.AccessRaw != nil {
		t.Fatalf("head with only other epochs', envs' and kinds' objects: %+v, %v", h, err)
	}
	access := rnd(40)
	put(store.EnvAccessKind, store.EnvAccessKey(e.ID, 2), access)
	if h, err = s.EnvHead(ctx, e.ID, nil, nil); err != nil || !bytes.Equal(h.AccessRaw, access) || len(h.AccessSig) != 64 {
		t.Fatalf("head with the epoch's allowed set: %+v, %v", h, err)
	}
	if live, err := s.MachineLive(ctx, m.ID, m.Verifier); err != nil || !live {
		t.Fatalf("machine live: %v %v", live, err)
	}
	if live, _ := s.MachineLive(ctx, m.ID, rnd(32)); live {
		t.Fatal("a wrong verifier is live")
	}
	must(t, s.DeleteMachine(ctx, a.ID, m.ID), "delete machine")
	if live, _ := s.MachineLive(ctx, m.ID, m.Verifier); live {
		t.Fatal("a deleted machine is live")
	}
	h, err = s.EnvHead(ctx, e.ID, m.ID, m.Verifier)
	must(t, err, "head after the machine's deletion")
	if h.MachineLive {
		t.Fatal("a deleted machine is live")
	}
}

func testUsage(t *testing.T, s store.Store) {
	a, d := mkAccount(t, s)
	other, _ := mkAccount(t, s)
	u, err := s.Usage(ctx, a.ID)
	must(t, err, "usage")
	if *u != (store.Usage{Devices: 1}) {
		t.Fatalf("fresh account: %+v", u)
	}
	app := mkApp(t, s, a.ID, "web")
	e1, e2 := mkEnv(t, s, app, "prod"), mkEnv(t, s, app, "dev")
	mkEnv(t, s, mkApp(t, s, other.ID, "x"), "y")
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: e1.ID, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64),
		Put: []store.Record{rec(rnd(16), 1, 100), rec(rnd(16), 1, 50)}, At: now}), "commit")
	must(t, s.CommitEnv(ctx, &store.Commit{EnvID: e2.ID, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64),
		Put: []store.Record{rec(rnd(16), 1, 7)}, At: now}), "commit")
	must(t, s.CreateMachine(ctx, mkMachine(a.ID, true), nil), "machine")
	d2 := &store.Device{KeyID: rnd(8), AccountID: a.ID, Verifier: rnd(32), Name: "second", CreatedAt: now}
	must(t, s.AddDevice(ctx, d2), "add device")
	must(t, s.RevokeDevice(ctx, a.ID, d.KeyID, now), "revoke device")
	u, err = s.Usage(ctx, a.ID)
	must(t, err, "usage")
	want := store.Usage{Apps: 1, Envs: 2, Secrets: 3, Bytes: 157, Machines: 1, Devices: 1}
	if *u != want {
		t.Fatalf("usage %+v, want %+v", *u, want)
	}
}

func newInvite(expires time.Time) *store.Invite {
	return &store.Invite{ID: rnd(8), Verifier: rnd(32), Note: "for bob", CreatedAt: now, ExpiresAt: expires}
}

func testInvites(t *testing.T, s store.Store) {
	inv := newInvite(time.Time{})
	must(t, s.CreateInvite(ctx, inv), "create invite")
	dup := newInvite(time.Time{})
	dup.Verifier = inv.Verifier
	wantErr(t, s.CreateInvite(ctx, dup), store.ErrExists, "invite with a taken verifier")

	// A wrong verifier creates nothing.
	a, d := newAccount("invited@example.com")
	wantErr(t, s.CreateAccountInvited(ctx, a, d, rnd(32)), store.ErrNotFound, "account with an unknown invite")
	if _, err := s.AccountByEmail(ctx, a.Email); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused invite left an account behind: %v", err)
	}
	must(t, s.CreateAccountInvited(ctx, a, d, inv.Verifier), "account with the invite")
	// Used once: a second account with it is refused.
	b, db := newAccount("second@example.com")
	wantErr(t, s.CreateAccountInvited(ctx, b, db, inv.Verifier), store.ErrNotFound, "second use of an invite")
	if _, err := s.Device(ctx, db.KeyID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second use left a device behind: %v", err)
	}
	// Expired and revoked invites are refused.
	old := newInvite(now.Add(-time.Second))
	must(t, s.CreateInvite(ctx, old), "create expired invite")
	wantErr(t, s.CreateAccountInvited(ctx, b, db, old.Verifier), store.ErrNotFound, "expired invite")
	rev := newInvite(now.Add(time.Hour))
	must(t, s.CreateInvite(ctx, rev), "create invite")
	must(t, s.RevokeInvite(ctx, rev.ID, now), "revoke invite")
	wantErr(t, s.CreateAccountInvited(ctx, b, db, rev.Verifier), store.ErrNotFound, "revoked invite")
	wantErr(t, s.RevokeInvite(ctx, inv.ID, now), store.ErrNotFound, "revoke a used invite")
	// An invite is not spent by a registration that fails for another reason.
	fresh := newInvite(time.Time{})
	must(t, s.CreateInvite(ctx, fresh), "create invite")
	c, dc := newAccount("invited@example.com") // email taken
	wantErr(t, s.CreateAccountInvited(ctx, c, dc, fresh.Verifier), store.ErrExists, "taken email")
	must(t, s.CreateAccountInvited(ctx, b, db, fresh.Verifier), "the invite still works")

	list, err := s.Invites(ctx)
	must(t, err, "list invites")
	if len(list) != 4 {
		t.Fatalf("%d invites, want 4", len(list))
	}
	byID := map[string]store.Invite{}
	for _, i := range list {
		byID[string(i.ID)] = i
	}
	if u := byID[string(inv.ID)]; !bytes.Equal(u.UsedBy, a.ID) || u.UsedAt.IsZero() || u.Note != "for bob" || !bytes.Equal(u.Verifier, inv.Verifier) {
		t.Fatalf("used invite: %+v", u)
	}
	if r := byID[string(rev.ID)]; r.RevokedAt.IsZero() || !r.UsedAt.IsZero() || !r.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("revoked invite: %+v", r)
	}
}

// testInviteRace spends one invite from many goroutines at once: exactly one account is created.
func testInviteRace(t *testing.T, s store.Store) {
	inv := newInvite(time.Time{})
	must(t, s.CreateInvite(ctx, inv), "create invite")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, d := newAccount(fmt.Sprintf("racer-%d@example.com", i))
			errs[i] = s.CreateAccountInvited(ctx, a, d, inv.Verifier)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNotFound):
			t.Fatalf("racing registration: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations spent one invite, want exactly 1", ok)
	}
}
