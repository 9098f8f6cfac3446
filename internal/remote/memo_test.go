// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// memoVault is a reader with a Memo over myapp/production at seq 1, read once.
func memoVault(t *testing.T) (*fixture, *Vault, *Memo) {
	t.Helper()
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DATABASE_URL", "postgres://real", "API_KEY", "real-key")); err != nil {
		t.Fatal(err)
	}
	m := NewMemo()
	t.Cleanup(m.Wipe)
	v.Memo = m
	e, err := v.Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Wipe()
	if got := values(e); got["API_KEY"] != "real-key" || m.Len() != 1 {
		t.Fatalf("first read: %v, memo holds %d", got, m.Len())
	}
	return f, v, m
}

// withoutAccountKey runs read with the reader's account key swapped for a wrong one: only an answer
// served from the memo can succeed.
func withoutAccountKey(t *testing.T, v *Vault, read func() (*Env, error)) (*Env, error) {
	t.Helper()
	wrong, err := vault.AccountKeyFromBytes(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	acct := *v.Account
	real := v.Account
	acct.AK = wrong
	v.Account = &acct
	defer func() { v.Account = real; wrong.Wipe() }()
	return read()
}

// The same server answer is opened once: a second read needs no key (it is not decrypted again), and
// returns its own copy of the values, which the caller may wipe without touching the memo.
func TestMemoServesTheSameStateOnce(t *testing.T) {
	_, v, _ := memoVault(t)
	e, err := withoutAccountKey(t, v, func() (*Env, error) { return v.Read(bg, "myapp", "production") })
	if err != nil {
		t.Fatalf("second read of the same state was not served from the memo: %v", err)
	}
	if got := values(e); got["API_KEY"] != "real-key" || got["DATABASE_URL"] != "postgres://real" || e.Seq != 1 {
		t.Fatalf("memo answer: %v seq %d", got, e.Seq)
	}
	e.Wipe()
	e2, err := v.Read(bg, "myapp", "production")
	if err != nil || values(e2)["API_KEY"] != "real-key" {
		t.Fatalf("after the caller wiped its copy: %v %v", err, values(e2))
	}
}

// A new state from the server is verified and decrypted in full: with a wrong key it does not open.
func TestMemoVerifiesANewState(t *testing.T) {
	f, v, _ := memoVault(t)
	w := f.vault()
	if _, err := w.Write(bg, "myapp", "production", false, set("API_KEY", "rotated")); err != nil {
		t.Fatal(err)
	}
	if _, err := withoutAccountKey(t, v, func() (*Env, error) { return v.Read(bg, "myapp", "production") }); err == nil {
		t.Fatal("a new state was served without being decrypted")
	}
	e, err := v.Read(bg, "myapp", "production")
	if err != nil || values(e)["API_KEY"] != "rotated" || e.Seq != 2 {
		t.Fatalf("new state: %v %v", err, values(e))
	}
}

// The server replays the state the memo holds after the reader's floor moved past it (another
// reader of the same floors saw seq 2): the memo does not serve it, the replay is refused as a
// rollback.
func TestMemoRefusesAReplayBelowTheFloor(t *testing.T) {
	f, v, _ := memoVault(t)
	var old []byte
	f.proxy.set(func(path string, body []byte) []byte {
		if strings.HasPrefix(path, "/v1/envs/") {
			old = append([]byte(nil), body...)
		}
		return body
	})
	if _, err := v.Read(bg, "myapp", "production"); err != nil || old == nil {
		t.Fatalf("capture: %v", err)
	}
	f.proxy.set(nil)
	other := &Vault{Client: f.client(f.dev.Token), Account: f.acct, HighWater: v.HighWater}
	if _, err := other.Write(bg, "myapp", "production", false, set("API_KEY", "rotated")); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Read(bg, "myapp", "production"); err != nil {
		t.Fatal(err)
	}
	var st api.EnvState
	if err := json.Unmarshal(old, &st); err != nil {
		t.Fatal(err)
	}
	if v.HighWater.Get(st.EnvID) != 2 {
		t.Fatalf("floor %d, want 2", v.HighWater.Get(st.EnvID))
	}
	f.proxy.set(func(path string, body []byte) []byte {
		if strings.HasPrefix(path, "/v1/envs/") {
			return old
		}
		return body
	})
	defer f.proxy.set(nil)
	e, err := v.Read(bg, "myapp", "production")
	if err == nil {
		t.Fatalf("the replayed state was served: %v", values(e))
	}
	if !errors.Is(err, vault.ErrRollback) {
		t.Fatalf("replay: %v, want a rollback", err)
	}
}

// Wipe destroys the held values (their locked buffers are unmapped), and the next read of the
// same state is decrypted again.
func TestMemoWipe(t *testing.T) {
	_, v, m := memoVault(t)
	var bufs []interface{ Len() int }
	m.mu.Lock()
	for _, e := range m.byKey {
		if len(e.buf.Bytes()) == 0 || !strings.Contains(string(e.buf.Bytes()), "real-key") {
			t.Fatal("the memo does not hold the values in its buffer")
		}
		bufs = append(bufs, e.buf)
	}
	m.mu.Unlock()
	m.Wipe()
	if m.Len() != 0 {
		t.Fatalf("memo holds %d after Wipe", m.Len())
	}
	for _, b := range bufs {
		if b.Len() != 0 {
			t.Fatal("a value buffer survived Wipe")
		}
	}
	if _, err := withoutAccountKey(t, v, func() (*Env, error) { return v.Read(bg, "myapp", "production") }); err == nil {
		t.Fatal("served from a wiped memo")
	}
	if m.Len() != 0 {
		t.Fatal("a wiped memo kept a new state")
	}
}
