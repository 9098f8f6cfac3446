// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/testutil"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// Attacks on revocation (crypto.md §2.8, threat table §5): the real ov-server on loopback, its
// SQLite database edited directly where the attack is a database edit, and the rewriting proxy where
// the attack is a lying answer. After each attack and a later rotation, the revoked (or expired) key
// must not read a value written afterwards, and the error must say why.

// sqlDB opens the server's SQLite file for direct edits.
func (f *fixture) sqlDB() *sql.DB {
	f.t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.db+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// saveMachine copies a machine's row and wraps aside in the database, as a server that means to
// keep a revoked key would.
func saveMachine(t *testing.T, db *sql.DB, id string) {
	t.Helper()
	raw, _ := hex.DecodeString(id)
	exec(t, db, `CREATE TABLE saved_machines AS SELECT * FROM machines WHERE id = ?`, raw)
	exec(t, db, `CREATE TABLE saved_wraps AS SELECT * FROM machine_wraps WHERE machine_id = ?`, raw)
}

// restoreMachine puts the saved row back under id (its own, or a new one) with its wraps, moved to
// epoch (the colluding server hands the revoked key whatever wrap it has for the current epoch); a
// row or wrap already there is kept.
func restoreMachine(t *testing.T, db *sql.DB, id string, epoch uint32) {
	t.Helper()
	raw, _ := hex.DecodeString(id)
	exec(t, db, `INSERT OR IGNORE INTO machines SELECT ?, account_id, verifier, x_pub, grant_bytes, grant_sig, pin_sign_pub, pin_mac,
		not_after, label, account_wrap, ak_version, created_at, last_seen_at FROM saved_machines`, raw)
	exec(t, db, `INSERT OR IGNORE INTO machine_wraps SELECT ?, app_id, env_id, ?, wrap FROM saved_wraps`, raw, epoch)
}

// softRevoke revokes machines as `ov auth machine-key revoke ID` does: signed, then deleted.
func softRevoke(t *testing.T, v *Vault, ids ...string) *envelope.Revocations {
	t.Helper()
	ms, err := v.Machines(bg)
	if err != nil {
		t.Fatal(err)
	}
	var sel []MachineInfo
	for _, m := range ms {
		for _, id := range ids {
			if m.MachineID == id {
				sel = append(sel, m)
			}
		}
	}
	if len(sel) != len(ids) {
		t.Fatalf("revoke %v: the server lists %d of them", ids, len(sel))
	}
	rl, err := v.Revoke(bg, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := v.Client.RevokeMachine(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	return rl
}

// hardRevoke is `ov auth machine-key revoke ID --rotate` for a key of myapp/production.
func hardRevoke(t *testing.T, v *Vault, id string) *RotateResult {
	t.Helper()
	softRevokeSigned(t, v, id)
	res, err := v.Rotate(bg, "myapp", "production", []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func softRevokeSigned(t *testing.T, v *Vault, id string) {
	t.Helper()
	ms, err := v.Machines(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.MachineID == id {
			if _, err := v.Revoke(bg, []MachineInfo{m}); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("machine %s not listed", id)
}

// cannotRead checks, cryptographically, that mk opens no wrap the database holds for the env's
// current epoch, and that the real machine reader, served by a colluding server, refuses to read
// and says why.
func cannotRead(t *testing.T, f *fixture, v *Vault, db *sql.DB, mk *vault.MachineKey, why error) {
	t.Helper()
	cur, err := v.Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Wipe()
	rows, err := db.Query(`SELECT machine_id, wrap FROM machine_wraps WHERE env_id = ? AND epoch = ?`, cur.scope.EnvID, cur.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id, w []byte
		if err := rows.Scan(&id, &w); err != nil {
			t.Fatal(err)
		}
		n++
		if ek, err := mk.UnwrapEnvKey(w, cur.scope); err == nil {
			ek.Wipe()
			t.Fatalf("the revoked key opens the wrap of epoch %d stored for machine %x", cur.Epoch, id)
		}
	}
	rows.Close()
	if n == 0 {
		t.Fatalf("no wraps at epoch %d at all: the test proves nothing", cur.Epoch)
	}
	r := f.machineReader(mk)
	got, err := readValue(t, r, "myapp", "production", "DB")
	if err == nil {
		t.Fatalf("the revoked key read %q written after its revocation", got)
	}
	if !errors.Is(err, why) {
		t.Fatalf("revoked key: %v, want %v", err, why)
	}
	t.Logf("the revoked key is refused: %v", err)
	if errors.Is(why, ErrNotAllowed) && !strings.Contains(err.Error(), "not in the signed allowed set") {
		t.Fatalf("the error does not say why: %v", err)
	}
}

func rewrapped(res *RotateResult, id string) bool {
	for _, r := range res.Rewrapped {
		if r == id {
			return true
		}
	}
	return false
}

// threeMachines writes DB=v1 and issues three keys for myapp/production.
func threeMachines(t *testing.T, f *fixture, v *Vault) (a, b, c *IssuedMachine) {
	t.Helper()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	var ms [3]*IssuedMachine
	for i := range ms {
		m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
		if got, err := readValue(t, f.machineReader(m.Key), "myapp", "production", "DB"); err != nil || got != "v1" {
			t.Fatalf("machine %d before: %q, %v", i, got, err)
		}
	}
	return ms[0], ms[1], ms[2]
}

// A server keeps a revoked key's row (and wraps) so that the next rotation, for another key,
// re-wraps the new epoch for it. The signed revocation list keeps it out.
func TestRevokedKeyKeptInPlace(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	db := f.sqlDB()
	a, b, c := threeMachines(t, f, v)
	saveMachine(t, db, a.ID)
	softRevoke(t, v, a.ID)
	restoreMachine(t, db, a.ID, 1) // the attack: the row is back, as if never deleted
	if ms, _ := v.Machines(bg); len(ms) != 3 {
		t.Fatalf("the server lists %d machines, want the revoked one among 3", len(ms))
	}
	res := hardRevoke(t, v, c.ID) // a later rotation, for another key
	if rewrapped(res, a.ID) || !rewrapped(res, b.ID) || len(res.Rewrapped) != 1 {
		t.Fatalf("rotation re-wrapped %v; want only %s", res.Rewrapped, b.ID)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	restoreMachine(t, db, a.ID, res.Epoch) // the server hands it its old wrap as the new epoch's
	cannotRead(t, f, v, db, a.Key, ErrNotAllowed)
	if got, err := readValue(t, f.machineReader(b.Key), "myapp", "production", "DB"); err != nil || got != "v2" {
		t.Fatalf("machine B after: %q, %v", got, err)
	}
}

// A server relists a revoked key's grant under a new id (and also keeps it under its own, to serve
// it). The grant names its machine inside the signature, and that id is on the revocation list.
func TestRevokedKeyRelistedUnderNewID(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	db := f.sqlDB()
	a, b, c := threeMachines(t, f, v)
	saveMachine(t, db, a.ID)
	softRevoke(t, v, a.ID)
	alias := NewID()
	restoreMachine(t, db, alias, 1) // the attack: the revoked grant under a fresh id
	ms, err := v.Machines(bg)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		if m.MachineID == alias {
			found = true
			if !m.Misfiled || m.Grant != nil {
				t.Fatalf("the relisted grant was taken as machine %s's: %+v", alias, m)
			}
		}
	}
	if !found {
		t.Fatal("the relisted row is not listed: the attack did not happen")
	}
	res := hardRevoke(t, v, c.ID)
	if rewrapped(res, a.ID) || rewrapped(res, alias) || !rewrapped(res, b.ID) || len(res.Rewrapped) != 1 {
		t.Fatalf("rotation re-wrapped %v; want only %s", res.Rewrapped, b.ID)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	restoreMachine(t, db, a.ID, res.Epoch)
	cannotRead(t, f, v, db, a.Key, ErrNotAllowed)
}

// A server swaps the grants of two live machines in its listing: each grant still wraps only to the
// machine it names, so nobody gains access, and the listing is flagged.
func TestSwappedGrantsAreMisfiled(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	a, b, c := threeMachines(t, f, v)
	f.proxy.set(func(path string, body []byte) []byte {
		if path != "/v1/machines" {
			return body
		}
		var l api.MachineList
		_ = json.Unmarshal(body, &l)
		var ia, ib int
		for i, m := range l.Machines {
			switch m.MachineID {
			case a.ID:
				ia = i
			case b.ID:
				ib = i
			}
		}
		l.Machines[ia].Grant, l.Machines[ib].Grant = l.Machines[ib].Grant, l.Machines[ia].Grant
		l.Machines[ia].GrantSig, l.Machines[ib].GrantSig = l.Machines[ib].GrantSig, l.Machines[ia].GrantSig
		out, _ := json.Marshal(&l)
		return out
	})
	ms, err := v.Machines(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if (m.MachineID == a.ID || m.MachineID == b.ID) && !m.Misfiled {
			t.Fatalf("a swapped grant was accepted for %s", m.MachineID)
		}
	}
	res := hardRevoke(t, v, c.ID)
	f.proxy.set(nil)
	if len(res.Rewrapped) != 0 {
		t.Fatalf("rotation re-wrapped %v from swapped grants", res.Rewrapped)
	}
}

// A grant that expired is not re-wrapped by a rotation, even though the server still holds the
// machine (and the machine's own clock says the grant is still in force).
func TestExpiredGrantIsNotRewrapped(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	db := f.sqlDB()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	e, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}, NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	live, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	saveMachine(t, db, e.ID)
	v.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } // the owner's clock, past not_after
	res := hardRevoke(t, v, other.ID)
	if rewrapped(res, e.ID) || !rewrapped(res, live.ID) {
		t.Fatalf("rotation re-wrapped %v; want %s and not the expired %s", res.Rewrapped, live.ID, e.ID)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	restoreMachine(t, db, e.ID, res.Epoch)
	cannotRead(t, f, v, db, e.Key, ErrNotAllowed)
}

// The revocation list rolled back (an older signed list, which lacks the newest revocation),
// truncated (an entry cut out) or removed: every rotation refuses it, so the key it hides is never
// re-wrapped.
func TestRevocationListRollback(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	db := f.sqlDB()
	a, b, c := threeMachines(t, f, v)
	var first, second api.Signed
	capture := func(into *api.Signed) {
		f.proxy.set(func(path string, body []byte) []byte {
			if path == "/v1/revocations" {
				_ = json.Unmarshal(body, into)
			}
			return body
		})
	}
	softRevoke(t, v, c.ID) // list seq 1: c
	capture(&first)
	if _, err := v.Revocations(bg, 0); err != nil {
		t.Fatal(err)
	}
	saveMachine(t, db, a.ID)
	softRevoke(t, v, a.ID) // list seq 2: a, c
	capture(&second)
	if _, err := v.Revocations(bg, 0); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(nil)
	restoreMachine(t, db, a.ID, 1)
	if len(first.Raw) == 0 || len(second.Raw) == 0 {
		t.Fatal("the revocation lists were not captured")
	}
	serve := func(s api.Signed) func(string, []byte) []byte {
		return func(path string, body []byte) []byte {
			if path != "/v1/revocations" {
				return body
			}
			out, _ := json.Marshal(&s)
			return out
		}
	}
	l2, err := envelope.ParseRevocations(second.Raw)
	if err != nil {
		t.Fatal(err)
	}
	cut := *l2
	for i, e := range cut.Entries {
		if hex.EncodeToString(e.MachineID) == a.ID {
			cut.Entries = append(append([]envelope.Revocation{}, cut.Entries[:i]...), cut.Entries[i+1:]...)
		}
	}
	truncated := api.Signed{Raw: cut.Marshal(), Sig: second.Sig}

	fresh := func() *Vault { // another device of the account, with no rollback state of its own
		hw, err := OpenHighWater(filepath.Join(testutil.SafeTempDir(t), "hw.json"))
		if err != nil {
			t.Fatal(err)
		}
		return &Vault{Client: f.client(f.dev.Token), Account: f.acct, HighWater: hw}
	}
	cases := []struct {
		name   string
		v      *Vault
		attack func()
		want   error
	}{
		{"rolled back, through the proxy", v, func() { f.proxy.set(serve(first)) }, vault.ErrRollback},
		{"rolled back in the database, seen by a device with no state", fresh(), func() {
			exec(t, db, `UPDATE signed_objects SET version = 1, raw = ?, sig = ? WHERE kind = 'revocations'`, first.Raw, first.Sig)
		}, vault.ErrRollback},
		{"truncated", v, func() { f.proxy.set(serve(truncated)) }, vault.ErrBadSignature},
		{"removed from the database", v, func() { exec(t, db, `DELETE FROM signed_objects WHERE kind = 'revocations'`) }, vault.ErrRollback},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exec(t, db, `INSERT OR REPLACE INTO signed_objects (account_id, kind, key, version, raw, sig, updated_at)
				VALUES (?, 'revocations', '', 2, ?, ?, 0)`, f.acct.ID, second.Raw, second.Sig)
			tc.attack()
			defer f.proxy.set(nil)
			res, err := tc.v.Rotate(bg, "myapp", "production", nil)
			if err == nil {
				t.Fatalf("rotation went ahead on the attacked list (re-wrapped %v)", res.Rewrapped)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrTampered) {
				t.Fatalf("rotate: %v, want %v", err, tc.want)
			}
		})
	}
	// With the true list back, the rotation leaves a out, and a reads nothing written afterwards.
	exec(t, db, `INSERT OR REPLACE INTO signed_objects (account_id, kind, key, version, raw, sig, updated_at)
		VALUES (?, 'revocations', '', 2, ?, ?, 0)`, f.acct.ID, second.Raw, second.Sig)
	res, err := v.Rotate(bg, "myapp", "production", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rewrapped(res, a.ID) || !rewrapped(res, b.ID) {
		t.Fatalf("rotation re-wrapped %v; want %s and not the revoked %s", res.Rewrapped, b.ID, a.ID)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	restoreMachine(t, db, a.ID, res.Epoch)
	cannotRead(t, f, v, db, a.Key, ErrNotAllowed)
}

// Right after a soft revocation, before any rotation, the re-signed allowed set already makes an
// honest reader of the revoked key refuse the epoch, even where the server keeps its row and wrap.
func TestSoftRevokedKeyRefusesTheEpoch(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	db := f.sqlDB()
	a, b, _ := threeMachines(t, f, v)
	saveMachine(t, db, a.ID)
	softRevoke(t, v, a.ID)
	restoreMachine(t, db, a.ID, 1)
	_, err := readValue(t, f.machineReader(a.Key), "myapp", "production", "DB")
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("revoked key with its row restored: %v, want ErrNotAllowed", err)
	}
	if got, err := readValue(t, f.machineReader(b.Key), "myapp", "production", "DB"); err != nil || got != "v1" {
		t.Fatalf("machine B: %q, %v", got, err)
	}
}

// What else a server could forge about allowed sets: an older epoch's set served as the current
// one, another env's set, a set with a flipped bit, no set at all, and an older version of the same
// epoch's set (from before the machine was added).
func TestForgedAllowedSetsAreRefused(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(bg, "myapp", "staging", true, set("DB", "s")); err != nil {
		t.Fatal(err)
	}
	first, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}, {"myapp", "staging"}}})
	if err != nil {
		t.Fatal(err)
	}
	var epoch1, staging api.EnvState
	capture := func(into *api.EnvState, env string) {
		f.proxy.set(func(path string, body []byte) []byte {
			if strings.HasPrefix(path, "/v1/envs/") {
				var st api.EnvState
				_ = json.Unmarshal(body, &st)
				if st.EnvName == env {
					*into = st
				}
			}
			return body
		})
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.machineReader(m.Key)
	capture(&epoch1, "production")
	if _, err := readValue(t, r, "myapp", "production", "DB"); err != nil {
		t.Fatal(err)
	}
	capture(&staging, "staging")
	if _, err := readValue(t, f.machineReader(first.Key), "myapp", "staging", "DB"); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(nil)
	other, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	hardRevoke(t, v, other.ID) // production is now at epoch 2, m still allowed
	if got, err := readValue(t, r, "myapp", "production", "DB"); err != nil || got != "v1" {
		t.Fatalf("after the rotation: %q, %v", got, err)
	}
	access := func(raw, sig []byte) func(string, []byte) []byte {
		return envState(func(st *api.EnvState) { st.Access, st.AccessSig = raw, sig })
	}
	cases := []struct {
		name   string
		modify func(string, []byte) []byte
		want   error
	}{
		{"the older epoch's set", access(epoch1.Access, epoch1.AccessSig), vault.ErrWrongAccount},
		{"another env's set", access(staging.Access, staging.AccessSig), vault.ErrWrongAccount},
		{"a set with a flipped bit", envState(func(st *api.EnvState) { st.Access[len(st.Access)-1] ^= 1 }), vault.ErrBadSignature},
		{"no set", access(nil, nil), ErrNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.proxy.set(c.modify)
			defer f.proxy.set(nil)
			if got, err := readValue(t, r, "myapp", "production", "DB"); !errors.Is(err, c.want) {
				t.Fatalf("read: %q, %v; want %v", got, err, c.want)
			}
		})
	}
	// An older version of the same epoch's set, from before a machine was added to it: that machine is
	// not in it and refuses (only availability is at stake: a server can always withhold data).
	var before api.EnvState
	capture(&before, "production")
	if _, err := readValue(t, r, "myapp", "production", "DB"); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(nil)
	late, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("an older version of the epoch's set", func(t *testing.T) {
		old, err := envelope.ParseEnvAccess(before.Access)
		if err != nil || old.Epoch != 2 {
			t.Fatalf("captured set: %+v, %v", old, err)
		}
		f.proxy.set(access(before.Access, before.AccessSig))
		defer f.proxy.set(nil)
		if got, err := readValue(t, f.machineReader(late.Key), "myapp", "production", "DB"); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("read: %q, %v; want ErrNotAllowed", got, err)
		}
	})
	if got, err := readValue(t, f.machineReader(late.Key), "myapp", "production", "DB"); err != nil || got != "v1" {
		t.Fatalf("the late machine, honestly served: %q, %v", got, err)
	}
}

// An account-wide key with no saved state refuses a rollback on first contact: its grant carries a
// signed floor for every env that existed when it was issued, and binds their names to their ids.
func TestAccountWideKeyFloorOnFirstContact(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(bg, "myapp", "staging", true, set("DB", "s")); err != nil {
		t.Fatal(err)
	}
	var old, stagingApps api.EnvState
	f.proxy.set(envState(func(st *api.EnvState) {
		if st.EnvName == "production" {
			old = *st
		} else {
			stagingApps = *st
		}
	}))
	if _, err := v.Read(bg, "myapp", "production"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Read(bg, "myapp", "staging"); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(nil)
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	w, err := v.IssueMachine(bg, MachineRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Grant.AccountWide() || w.Grant.Version != envelope.GrantV2 {
		t.Fatalf("account-wide grant: %+v", w.Grant)
	}
	if fl, ok := w.Grant.Floor("myapp", "production"); !ok || fl.SeqMin != 2 {
		t.Fatalf("floor of myapp/production: %+v %v, want seq 2", fl, ok)
	}
	t.Run("rollback on first contact", func(t *testing.T) {
		f.proxy.set(envState(func(st *api.EnvState) { *st = old }))
		defer f.proxy.set(nil)
		r := f.machineReader(w.Key) // no state at all
		if got, err := readValue(t, r, "myapp", "production", "DB"); !errors.Is(err, vault.ErrRollback) {
			t.Fatalf("first contact with the seq 1 manifest: %q, %v; want a rollback error", got, err)
		}
	})
	t.Run("names mapped to another env", func(t *testing.T) {
		f.proxy.set(func(path string, body []byte) []byte {
			if path != "/v1/apps" {
				return body
			}
			var l api.AppList
			_ = json.Unmarshal(body, &l)
			for i := range l.Apps {
				for j := range l.Apps[i].Envs {
					if l.Apps[i].Envs[j].Name == "production" {
						l.Apps[i].Envs[j].EnvID = stagingApps.EnvID
					} else {
						l.Apps[i].Envs[j].EnvID = old.EnvID
					}
				}
			}
			out, _ := json.Marshal(&l)
			return out
		})
		defer f.proxy.set(nil)
		if got, err := readValue(t, f.machineReader(w.Key), "myapp", "production", "DB"); !errors.Is(err, ErrTampered) {
			t.Fatalf("production mapped to staging's id: %q, %v; want ErrTampered", got, err)
		}
	})
	if got, err := readValue(t, f.machineReader(w.Key), "myapp", "production", "DB"); err != nil || got != "v2" {
		t.Fatalf("honest read: %q, %v", got, err)
	}
}

// The offline cache's fetch time is authenticated under the machine key: moving it (into the future,
// so that --max-age accepts an old copy) breaks the MAC; a time in the future is refused even with a
// valid MAC (a clock set back); an entry without a MAC (the old format) is not used.
func TestCacheFetchTimeCannotBeForged(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.machineReader(m.Key)
	if _, err := readValue(t, r, "myapp", "production", "DB"); err != nil {
		t.Fatal(err)
	}
	path := r.Cache.path(m.Key, "myapp", "production")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	offline := &MachineReader{Key: m.Key, HighWater: r.HighWater, Cache: r.Cache, Offline: true, MaxAge: time.Second}
	if !bytes.HasPrefix(orig, []byte(cacheMagic)) || len(orig) < len(cacheMagic)+sha256.Size {
		t.Fatalf("cache file of %d bytes without the format's magic", len(orig))
	}
	origEntry, origMAC := orig[len(cacheMagic):len(orig)-sha256.Size], orig[len(orig)-sha256.Size:]
	// rewrite writes the file as mod leaves it: the entry re-encoded, with the original MAC, or
	// (remac) a MAC under the machine key, as only its holder can make.
	rewrite := func(mod func(e *cacheEntry) []byte, remac bool) {
		t.Helper()
		e, err := decodeEntry(bytes.Clone(origEntry))
		if err != nil {
			t.Fatal(err)
		}
		b := mod(e)
		if b == nil {
			entry, err := encodeEntry(e)
			if err != nil {
				t.Fatal(err)
			}
			mac := origMAC
			if remac {
				m := m.Key.CacheMAC("myapp", "production", entry)
				mac = m[:]
			}
			b = append(append([]byte(cacheMagic), entry...), mac...)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	at := func(when time.Time) func(e *cacheEntry) []byte {
		return func(e *cacheEntry) []byte { e.FetchedAt = when; return nil }
	}
	// The previous format, JSON with a MAC over the JSON entry: authentic, but no longer read.
	oldFormat := func(e *cacheEntry) []byte {
		entry, _ := json.Marshal(e)
		mac := m.Key.CacheMAC("myapp", "production", entry)
		b, _ := json.Marshal(map[string]any{"format": "ov-machine-cache/2", "entry": json.RawMessage(entry), "mac": mac[:]})
		return b
	}
	noMAC := func(e *cacheEntry) []byte {
		e.FetchedAt = time.Now()
		entry, _ := encodeEntry(e)
		return append([]byte(cacheMagic), entry...)
	}
	future := time.Now().Add(24 * time.Hour)
	// The MAC covers the signatures: a copy whose manifest signature was replaced is refused, unless
	// the machine key's holder re-MACs it; such a copy is then read without verifying the signature
	// again (crypto.md §2.9: the holder of the machine key pins the signing key, so it could sign a
	// whole new chain anyway). Online, the same answer is refused (TestMisbehavingServerIsRefused).
	badSig := func(e *cacheEntry) []byte {
		e.FetchedAt = time.Now()
		e.Env.ManifestSig = bytes.Repeat([]byte{7}, len(e.Env.ManifestSig))
		return nil
	}
	cases := []struct {
		name   string
		mod    func(e *cacheEntry) []byte
		remac  bool
		want   error
		offset time.Duration
	}{
		{"fetch time moved into the future", at(future), false, vault.ErrBadCacheMAC, 0},
		{"fetch time moved to just now", at(time.Now()), false, vault.ErrBadCacheMAC, 0},
		{"no MAC", noMAC, false, vault.ErrBadCacheMAC, 0},
		{"the old JSON format", oldFormat, false, vault.ErrBadCacheMAC, 0},
		{"valid MAC, fetch time in the future", at(future), true, ErrCacheFuture, 0},
		{"valid MAC, too old", at(time.Now().Add(-time.Minute)), true, ErrCacheTooOld, 0},
		{"signature replaced", badSig, false, vault.ErrBadCacheMAC, 0},
		{"signature replaced, MAC by the machine key", badSig, true, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rewrite(c.mod, c.remac)
			if got, err := readValue(t, offline, "myapp", "production", "DB"); !errors.Is(err, c.want) {
				t.Fatalf("offline read: %q, %v; want %v", got, err, c.want)
			}
		})
	}
	// Untouched, the same file is used (within --max-age).
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	offline.MaxAge = time.Hour
	if got, err := readValue(t, offline, "myapp", "production", "DB"); err != nil || got != "v1" {
		t.Fatalf("untouched cache: %q, %v", got, err)
	}
}

// A rollback state that cannot be written stops the read, unless the caller opted in (Soft).
func TestUnwritableStateIsAnError(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	// No state directory at all, and one that cannot be created (procfs refuses mkdir, even to root).
	for _, c := range []struct {
		path string
		soft bool
	}{{"", false}, {"/proc/ov-no-such-state/hw.json", false}, {"", true}, {"/proc/ov-no-such-state/hw.json", true}} {
		hw, err := OpenHighWater(c.path)
		if err != nil {
			t.Fatal(err)
		}
		soft := c.soft
		hw.Soft = soft
		r := f.machineReader(m.Key)
		r.HighWater = hw
		got, err := readValue(t, r, "myapp", "production", "DB")
		switch {
		case !soft && !errors.Is(err, ErrStateUnsaved):
			t.Fatalf("strict: %q, %v; want ErrStateUnsaved", got, err)
		case soft && (err != nil || got != "v1" || !errors.Is(hw.WriteErr, ErrStateUnsaved)):
			t.Fatalf("opted in: %q, %v, warning %v", got, err, hw.WriteErr)
		}
	}
}
