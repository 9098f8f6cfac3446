// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"github.com/opaquevault/opaquevault/internal/secmem"

	"bytes"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func TestKeysAreRedacted(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	pk, err := DerivePasswordKeys([]byte("pw"), f.ask, f.aid, f.params)
	if err != nil {
		t.Fatal(err)
	}
	c := vectorCipher(t, f)
	r := &EnvReader{c: c}
	values := map[string]any{
		"Key": f.ak.Key, "*Key": &f.ak.Key,
		"AccountKey": *f.ak, "*AccountKey": f.ak,
		"EnvKey": *f.ek, "*EnvKey": f.ek,
		"MachineKey": *f.mk, "*MachineKey": f.mk,
		"SigningKey": *f.sk, "*SigningKey": f.sk,
		"AccountSecretKey": *f.ask, "*AccountSecretKey": f.ask,
		"*PasswordKeys": pk, "PasswordKeys": *pk,
		"*EnvCipher": c, "EnvCipher": *c,
		"*EnvReader": r,
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%s", "%x", "%X", "%q", "%#v", "%d", "%T"} {
			got := fmt.Sprintf(verb, v)
			if verb == "%T" {
				continue
			}
			if got != "[redacted]" {
				t.Errorf("%s with %s printed %q", name, verb, got)
			}
		}
		if got := fmt.Sprint(v); got != "[redacted]" {
			t.Errorf("Sprint(%s) = %q", name, got)
		}
		if got := fmt.Sprintln(v); got != "[redacted]\n" {
			t.Errorf("Sprintln(%s) = %q", name, got)
		}
	}
	for name, v := range values {
		if strings.Contains(name, "PasswordKeys") || strings.Contains(name, "Env") && !strings.Contains(name, "EnvKey") {
			continue // aggregates: only fmt applies
		}
		if b, err := json.Marshal(v); err == nil {
			t.Errorf("json.Marshal(%s) = %s, want an error", name, b)
		}
		if b, err := xml.Marshal(v); err == nil {
			t.Errorf("xml.Marshal(%s) = %s, want an error", name, b)
		}
		if err := gob.NewEncoder(&bytes.Buffer{}).Encode(v); err == nil {
			t.Errorf("gob.Encode(%s) succeeded", name)
		}
	}
	// Keys nested in caller structs, exported or not.
	type holder struct {
		AK    *AccountKey
		EK    EnvKey
		inner struct{ mk MachineKey }
		sk    SigningKey
	}
	h := holder{AK: f.ak, EK: *f.ek, sk: *f.sk}
	h.inner.mk = *f.mk
	if b, err := json.Marshal(h); err == nil {
		t.Errorf("json.Marshal of a struct holding keys = %s", b)
	}
	var logbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logbuf, nil)).Info("x", "ak", f.ak, "ek", *f.ek)
	printed := []string{
		fmt.Sprintf("%v", []any{f.ak, *f.mk}), fmt.Sprintf("%v", map[string]EnvKey{"k": *f.ek}),
		logbuf.String(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%X", "%d", "%s"} {
		printed = append(printed, fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	for _, k := range []*Key{&f.ak.Key, &f.ek.Key, &f.mk.Key, &f.sk.Key} {
		raw := k.Bytes()
		forms := []string{hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)), fmt.Sprint(raw[:8])[1:15], string(raw[:8])}
		for _, p := range printed {
			for _, form := range forms {
				if strings.Contains(p, form) {
					t.Errorf("printed %q contains key bytes (%q)", p, form)
				}
			}
		}
	}
	if !strings.Contains(logbuf.String(), `"ak":"[redacted]"`) {
		t.Errorf("slog output %s", logbuf.String())
	}
	var k Key
	if err := json.Unmarshal([]byte(`"AAAA"`), &k); err == nil {
		t.Error("json.Unmarshal into a Key succeeded")
	}
}

func TestKeysAreNotComparable(t *testing.T) {
	for _, v := range []any{Key{}, AccountKey{}, EnvKey{}, MachineKey{}, SigningKey{}, AccountSecretKey{}} {
		if reflect.TypeOf(v).Comparable() {
			t.Errorf("%T is comparable with ==", v)
		}
	}
}

// Keys live in locked slots outside the Go heap (excluded from core dumps).
func TestKeysLiveInLockedSlots(t *testing.T) {
	k := NewAccountKey()
	defer k.Wipe()
	if !secmem.SlotLocked((*slotRef)(k.p).s) {
		t.Fatal("the key is not in a secmem slot")
	}
}

func TestKeyEqualAndWipe(t *testing.T) {
	a := NewEnvKey()
	b, err := EnvKeyFromBytes(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(&b.Key) || a.Equal(&NewEnvKey().Key) {
		t.Fatal("Equal")
	}
	raw := b.Bytes()
	live := secmem.LiveSlots()
	b.Wipe()
	if !bytes.Equal(raw, make([]byte, 32)) || a.Equal(&b.Key) {
		t.Fatal("Wipe did not zero the key")
	}
	if secmem.LiveSlots() != live-1 {
		t.Fatal("Wipe did not return the key's slot")
	}
	b.Wipe() // idempotent
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a wiped key was usable")
			}
		}()
		_ = b.Bytes()
	}()
	if bytes.Equal(a.Bytes(), make([]byte, 32)) {
		t.Fatal("Wipe of a copy-from-bytes key affected the original")
	}
	var zero Key
	if zero.Equal(&a.Key) || a.Equal(nil) {
		t.Fatal("Equal with an empty key")
	}
	zero.Wipe() // no panic
	for _, n := range []int{0, 31, 33} {
		if _, err := AccountKeyFromBytes(make([]byte, n)); err == nil {
			t.Errorf("AccountKeyFromBytes(%d bytes) accepted", n)
		}
		if _, err := EnvKeyFromBytes(make([]byte, n)); err == nil {
			t.Errorf("EnvKeyFromBytes(%d bytes) accepted", n)
		}
		if _, err := AccountSecretKeyFromBytes(make([]byte, n)); err == nil {
			t.Errorf("AccountSecretKeyFromBytes(%d bytes) accepted", n)
		}
	}
	if bytes.Equal(NewAccountKey().Bytes(), NewAccountKey().Bytes()) {
		t.Fatal("random keys repeat")
	}
	pk := &PasswordKeys{kek: NewAccountKey().Key, loginAuth: NewAccountKey().Key, keyCheck: [32]byte{1}}
	kek, la := pk.kek.Bytes(), pk.loginAuth.Bytes()
	pk.Wipe()
	if !bytes.Equal(kek, make([]byte, 32)) || !bytes.Equal(la, make([]byte, 32)) || pk.keyCheck != [32]byte{} {
		t.Fatal("PasswordKeys.Wipe")
	}
}

func TestEmptyKeyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("using an empty Key did not panic")
		}
	}()
	var ek EnvKey
	_, _ = NewEnvCipher(&ek, Scope{AccountID: make([]byte, 16), AppID: make([]byte, 16), EnvID: make([]byte, 16)})
}
