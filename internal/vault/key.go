// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"unsafe"

	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// KeyLen is the size of every symmetric key, seed and machine key.
const KeyLen = envelope.KeyLen

const redacted = "[redacted]"

var errRefuseMarshal = errors.New("vault: refusing to marshal a key")

// Key is 32 bytes of secret key material (crypto.md §1 and house style B.7).
//
// A Key cannot be compared with == (use [Key.Equal], which is constant time),
// prints as "[redacted]" under every fmt verb and slog, and refuses the JSON,
// text, binary and gob marshallers. A Key is a handle: copies share storage,
// and [Key.Wipe] clears it for all of them. The zero Key holds no key and
// every operation that needs one panics.
//
// The bytes are held through an unsafe.Pointer rather than in a [32]byte
// field (as house style B.7 sketches) or a *[32]byte: fmt cannot call Format
// on an unexported struct field, and walks it by reflection instead; it prints
// an array's bytes, and it dereferences a *[32]byte when it reports a bad
// verb such as %s. An unsafe.Pointer is only ever printed as an address.
// TestKeysAreRedacted checks all three ways.
//
// Role types ([AccountKey], [EnvKey], [MachineKey], ...) embed Key so that
// the compiler keeps one kind of key from being passed as another.
type Key struct {
	_ [0]func()      // not comparable
	p unsafe.Pointer // *[KeyLen]byte, never nil in a usable Key
}

// newKey takes a 32-byte slot outside the Go heap (mlocked where the limit allows, excluded from
// core dumps; see internal/secmem). [Key.Wipe] zeroes the slot and returns it, after which every copy
// of the Key panics on use instead of seeing another key's bytes.
func newKey() Key { return Key{p: unsafe.Pointer(&slotRef{s: secmem.NewSlot()})} }

// slotRef is the storage a Key and its copies share.
type slotRef struct {
	s *[KeyLen]byte // nil once wiped
}

func randomKey() Key {
	k := newKey()
	randRead(k.arr()[:])
	return k
}

func keyFrom(b []byte) Key {
	k := newKey()
	copy(k.arr()[:], b)
	return k
}

// randRead fills b from crypto/rand, which cannot fail on supported platforms
// (Go ≥ 1.24 crashes the program instead of returning an error).
func randRead(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("vault: crypto/rand failed: " + err.Error())
	}
}

// arr returns the key bytes; it panics on the zero Key (a programmer error).
func (k *Key) arr() *[KeyLen]byte {
	if k == nil || k.p == nil {
		panic("vault: use of an empty Key")
	}
	r := (*slotRef)(k.p)
	if r.s == nil {
		panic("vault: use of a wiped Key")
	}
	return r.s
}

// Wipe overwrites the key with zeros and returns its locked slot. It is
// idempotent; afterwards every copy of the Key panics on use (Equal reports
// false), so a wiped key can never silently become another key.
func (k *Key) Wipe() {
	if k == nil || k.p == nil {
		return
	}
	r := (*slotRef)(k.p)
	if r.s != nil {
		secmem.FreeSlot(r.s)
		r.s = nil
	}
}

// Equal reports in constant time whether k and o hold the same bytes.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil || k.p == nil || o.p == nil || (*slotRef)(k.p).s == nil || (*slotRef)(o.p).s == nil {
		return false
	}
	return subtle.ConstantTimeCompare(k.arr()[:], o.arr()[:]) == 1
}

// Bytes returns the key's own storage, not a copy, for the few places that
// must move a key out of the process's Go values: the 32-byte machine key file,
// the Account Secret Key in the config, and the account key sent to the agent.
// Do not retain or log the slice.
func (k *Key) Bytes() []byte { return k.arr()[:] }

// Format prints "[redacted]" for every verb (%v %s %x %q %#v %d ...).
func (Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// String returns "[redacted]".
func (Key) String() string { return redacted }

// GoString returns "[redacted]".
func (Key) GoString() string { return redacted }

// LogValue makes slog print "[redacted]".
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON refuses.
func (Key) MarshalJSON() ([]byte, error) { return nil, errRefuseMarshal }

// MarshalText refuses.
func (Key) MarshalText() ([]byte, error) { return nil, errRefuseMarshal }

// MarshalBinary refuses.
func (Key) MarshalBinary() ([]byte, error) { return nil, errRefuseMarshal }

// GobEncode refuses.
func (Key) GobEncode() ([]byte, error) { return nil, errRefuseMarshal }

// UnmarshalJSON refuses: keys are never read from JSON.
func (*Key) UnmarshalJSON([]byte) error { return errRefuseMarshal }

// UnmarshalText refuses.
func (*Key) UnmarshalText([]byte) error { return errRefuseMarshal }

// AccountKey is AK, the random account key (crypto.md §1.3). It wraps the
// signing key and every environment key, and is itself wrapped under the KEK
// and, for account-wide machine keys, to a machine.
type AccountKey struct{ Key }

// EnvKey is EK, the random key of one (app, env, epoch) (crypto.md §1.4). It
// is only ever an HKDF input; see [NewEnvCipher].
type EnvKey struct{ Key }

// AccountSecretKey is the ASK, the 32 random bytes mixed into the password KDF
// (crypto.md §1.1). It is kept in the config file and the Emergency Kit and
// never sent to the server.
type AccountSecretKey struct{ Key }

// NewAccountKey returns a fresh random account key.
func NewAccountKey() *AccountKey { return &AccountKey{randomKey()} }

// NewEnvKey returns a fresh random environment key.
func NewEnvKey() *EnvKey { return &EnvKey{randomKey()} }

// NewAccountSecretKey returns a fresh random Account Secret Key.
func NewAccountSecretKey() *AccountSecretKey { return &AccountSecretKey{randomKey()} }

func checkKeyLen(what string, b []byte) error {
	if len(b) != KeyLen {
		return fmt.Errorf("vault: load %s: %d bytes, want %d: %w", what, len(b), KeyLen, ErrKeyLength)
	}
	return nil
}

// AccountKeyFromBytes copies a 32-byte account key (for instance one the
// agent received from `ov agent unlock`). The caller wipes b. Errors wrap
// [ErrKeyLength].
func AccountKeyFromBytes(b []byte) (*AccountKey, error) {
	if err := checkKeyLen("account key", b); err != nil {
		return nil, err
	}
	return &AccountKey{keyFrom(b)}, nil
}

// EnvKeyFromBytes copies a 32-byte environment key. Errors wrap
// [ErrKeyLength].
func EnvKeyFromBytes(b []byte) (*EnvKey, error) {
	if err := checkKeyLen("environment key", b); err != nil {
		return nil, err
	}
	return &EnvKey{keyFrom(b)}, nil
}

// AccountSecretKeyFromBytes copies a 32-byte Account Secret Key. Errors wrap
// [ErrKeyLength].
func AccountSecretKeyFromBytes(b []byte) (*AccountSecretKey, error) {
	if err := checkKeyLen("account secret key", b); err != nil {
		return nil, err
	}
	return &AccountSecretKey{keyFrom(b)}, nil
}

// Format prints "[redacted]": a PasswordKeys holds the KEK and login_auth.
func (PasswordKeys) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// Format prints "[redacted]": an EnvCipher holds record and blinding keys.
func (EnvCipher) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// Format prints "[redacted]": an EnvReader holds record and blinding keys.
func (EnvReader) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }
