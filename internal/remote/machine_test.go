// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/secmem"
	"github.com/opaquevault/opaquevault/internal/testutil"
	"github.com/opaquevault/opaquevault/internal/vault"
)

func (f *fixture) machineReader(mk *vault.MachineKey) *MachineReader {
	dir := testutil.SafeTempDir(f.t)
	hw, err := OpenHighWater(filepath.Join(dir, "hw.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	tok := mk.Token()
	cl, err := api.NewClient(f.url, api.ClientOptions{Token: string(tok)})
	if err != nil {
		f.t.Fatal(err)
	}
	return &MachineReader{Client: cl, Key: mk, HighWater: hw, Cache: &Cache{Dir: filepath.Join(dir, "cache")}, MaxAge: time.Hour}
}

func readValue(t *testing.T, r *MachineReader, app, env, name string) (string, error) {
	t.Helper()
	e, _, err := r.Read(bg, app, env)
	if err != nil {
		return "", err
	}
	defer e.Wipe()
	s, ok := e.Lookup(name)
	if !ok {
		t.Fatalf("%s missing from %s/%s", name, app, env)
	}
	return string(s.Value), nil
}

// A hard revoke re-keys the env: the other machines keep reading, the revoked key can neither fetch
// nor decrypt anything written afterwards, even with the wrap it held before.
func TestRotateRevokesCryptographically(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	a, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := f.machineReader(a.Key), f.machineReader(b.Key)
	// Capture what machine A sees (its wrap of epoch 1) before the revocation.
	var before api.EnvState
	f.proxy.set(func(path string, body []byte) []byte {
		if strings.HasPrefix(path, "/v1/envs/") {
			_ = json.Unmarshal(body, &before)
		}
		return body
	})
	if got, err := readValue(t, ra, "myapp", "production", "DB"); err != nil || got != "v1" {
		t.Fatalf("machine A before: %q, %v", got, err)
	}
	f.proxy.set(nil)

	res, err := v.Rotate(bg, "myapp", "production", []string{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 2 || len(res.Rewrapped) != 1 || res.Rewrapped[0] != b.ID {
		t.Fatalf("rotate: %+v, want epoch 2 and B re-wrapped", res)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	if got, err := readValue(t, rb, "myapp", "production", "DB"); err != nil || got != "v2" {
		t.Fatalf("machine B after the rotation: %q, %v", got, err)
	}
	if _, err := readValue(t, ra, "myapp", "production", "DB"); !errors.Is(err, ErrMachineUnknown) {
		t.Fatalf("revoked machine A: %v, want ErrMachineUnknown", err)
	}
	// Even with its old wrap and the new ciphertext (say, from a database dump), A decrypts nothing.
	after, err := v.Client.Env(bg, before.EnvID)
	if err != nil {
		t.Fatal(err)
	}
	scope := vault.Scope{AccountID: f.acct.ID, Epoch: after.Epoch}
	scope.AppID, _ = DecodeID("app", after.AppID)
	scope.EnvID, _ = DecodeID("env", after.EnvID)
	if _, err := a.Key.UnwrapEnvKey(before.MachineWrap, scope); err == nil {
		t.Fatal("A's epoch-1 wrap opened as an epoch-2 key")
	}
	scope.Epoch = 1
	oldEK, err := a.Key.UnwrapEnvKey(before.MachineWrap, scope)
	if err != nil {
		t.Fatal(err)
	}
	m, err := vault.VerifyManifest(after.Manifest, after.ManifestSig, vault.ManifestCheck{PublicKey: f.acct.SignPub, AccountID: f.acct.ID, AppID: scope.AppID, EnvID: scope.EnvID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.NewEnvReader(m, oldEK); !errors.Is(err, vault.ErrEKMismatch) {
		t.Fatalf("old key against the new manifest: %v, want ErrEKMismatch", err)
	}
}

func TestMachineReaderRefusesAMisbehavingServer(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("DB", "v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(bg, "myapp", "staging", true, set("DB", "staging")); err != nil {
		t.Fatal(err)
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "staging"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.machineReader(m.Key)
	var old api.EnvState
	var otherSelf api.MachineSelf
	f.proxy.set(func(path string, body []byte) []byte {
		if strings.HasPrefix(path, "/v1/envs/") {
			_ = json.Unmarshal(body, &old)
		}
		return body
	})
	if got, err := readValue(t, r, "myapp", "production", "DB"); err != nil || got != "v1" {
		t.Fatalf("first read: %q, %v", got, err)
	}
	f.proxy.set(func(path string, body []byte) []byte {
		if path == "/v1/machine" {
			_ = json.Unmarshal(body, &otherSelf)
		}
		return body
	})
	if _, err := readValue(t, f.machineReader(other.Key), "myapp", "staging", "DB"); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(nil)
	if _, err := v.Write(bg, "myapp", "production", false, set("DB", "v2")); err != nil {
		t.Fatal(err)
	}
	if got, err := readValue(t, r, "myapp", "production", "DB"); err != nil || got != "v2" {
		t.Fatalf("second read: %q, %v", got, err)
	}
	self := func(mod func(s *api.MachineSelf)) func(string, []byte) []byte {
		return func(path string, body []byte) []byte {
			if path != "/v1/machine" {
				return body
			}
			var s api.MachineSelf
			_ = json.Unmarshal(body, &s)
			mod(&s)
			b, _ := json.Marshal(&s)
			return b
		}
	}
	cases := []struct {
		name   string
		modify func(string, []byte) []byte
		want   error
	}{
		{"replay the older manifest", envState(func(st *api.EnvState) { *st = old }), vault.ErrRollback},
		{"substitute the signing key in the pin", self(func(s *api.MachineSelf) { s.Pin.SignPub = f.otherSignPub() }), vault.ErrBadPin},
		{"another machine's grant", self(func(s *api.MachineSelf) { s.Grant, s.GrantSig = otherSelf.Grant, otherSelf.GrantSig }), vault.ErrGrantMismatch},
		{"a grant with a flipped bit", self(func(s *api.MachineSelf) { s.Grant[len(s.Grant)-1] ^= 1 }), vault.ErrBadSignature},
		{"a tampered machine wrap", envState(func(st *api.EnvState) { st.MachineWrap[40] ^= 1 }), vault.ErrAuth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.proxy.set(c.modify)
			defer f.proxy.set(nil)
			got, err := readValue(t, r, "myapp", "production", "DB")
			if err == nil || !errors.Is(err, c.want) {
				t.Fatalf("read: %q, %v; want %v", got, err, c.want)
			}
		})
	}
}

// otherSignPub is a valid Ed25519 public key of another account.
func (f *fixture) otherSignPub() []byte {
	return vault.NewSigningKey().Public()
}

// The read paths give back every locked key slot they take: a long-running agent must not grow.
func TestReadsDoNotLeakKeySlots(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("A", "1", "B", "2")); err != nil {
		t.Fatal(err)
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Key.Wipe()
	r := f.machineReader(m.Key)
	read := func() {
		e, err := v.Read(bg, "myapp", "production")
		if err != nil {
			t.Fatal(err)
		}
		e.Wipe()
		e, _, err = r.Read(bg, "myapp", "production")
		if err != nil {
			t.Fatal(err)
		}
		e.Wipe()
	}
	read()
	before := secmem.LiveSlots()
	for i := 0; i < 20; i++ {
		read()
	}
	if after := secmem.LiveSlots(); after != before {
		t.Fatalf("20 reads left %d key slots in use (before: %d)", after-before, before)
	}
}

// A key with two scopes is hard-revoked env by env: the second rotation does not trip over the row
// the first one deleted, and the key opens neither env's new epoch.
func TestRotateEachScopeOfARevokedKey(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	for _, env := range []string{"production", "staging"} {
		if _, err := v.Write(bg, "myapp", env, true, set("DB", env)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := v.IssueMachine(bg, MachineRequest{Scopes: []ScopeName{{"myapp", "production"}, {"myapp", "staging"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"production", "staging"} {
		res, err := v.Rotate(bg, "myapp", env, []string{m.ID})
		if err != nil {
			t.Fatalf("rotate %s: %v", env, err)
		}
		if len(res.Rewrapped) != 0 {
			t.Fatalf("rotate %s re-wrapped %v", env, res.Rewrapped)
		}
		cur, err := v.Read(bg, "myapp", env)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Epoch != 2 {
			t.Fatalf("%s at epoch %d", env, cur.Epoch)
		}
		cur.Wipe()
	}
	if _, err := readValue(t, f.machineReader(m.Key), "myapp", "staging", "DB"); !errors.Is(err, ErrMachineUnknown) {
		t.Fatalf("revoked key: %v", err)
	}
}
