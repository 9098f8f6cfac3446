// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// SignRevocations validates l, encodes it and signs the encoding (crypto.md
// §2.8). Errors wrap envelope.ErrMalformed.
func (sk *SigningKey) SignRevocations(l *envelope.Revocations) (raw, sig []byte, err error) {
	if err := l.Validate(); err != nil {
		return nil, nil, fmt.Errorf("vault: sign revocations: %w", err)
	}
	raw = l.Marshal()
	return raw, sk.sign(raw), nil
}

// VerifyRevocations verifies a revocation list with the pinned signing key,
// parses it strictly, checks that it is accountID's, and refuses a seq below
// floor (an older list, with fewer entries: [ErrRollback]). Errors wrap
// [ErrBadSignature], [ErrWrongAccount], [ErrRollback] or envelope's parse
// errors.
func VerifyRevocations(pub ed25519.PublicKey, raw, sig, accountID []byte, floor uint64) (*envelope.Revocations, error) {
	if err := verifySig("revocations", pub, raw, sig); err != nil {
		return nil, err
	}
	l, err := envelope.ParseRevocations(raw)
	if err != nil {
		return nil, fmt.Errorf("vault: verify revocations: %w", err)
	}
	if !bytes.Equal(l.AccountID, accountID) {
		return nil, fmt.Errorf("vault: verify revocations: %w", ErrWrongAccount)
	}
	if l.Seq < floor {
		return nil, fmt.Errorf("vault: verify revocations: seq %d is below %d, the newest seen: %w", l.Seq, floor, ErrRollback)
	}
	return l, nil
}

// SignEnvAccess validates a, encodes it and signs the encoding (crypto.md
// §2.8). Errors wrap envelope.ErrMalformed.
func (sk *SigningKey) SignEnvAccess(a *envelope.EnvAccess) (raw, sig []byte, err error) {
	if err := a.Validate(); err != nil {
		return nil, nil, fmt.Errorf("vault: sign env access: %w", err)
	}
	raw = a.Marshal()
	return raw, sk.sign(raw), nil
}

// AccessCheck is what the reader of an allowed set knows in advance.
type AccessCheck struct {
	PublicKey ed25519.PublicKey
	AccountID []byte
	AppID     []byte
	EnvID     []byte
	Epoch     uint32
	// Cached: as [ManifestCheck.Cached].
	Cached bool
}

// VerifyEnvAccess verifies an allowed set with the pinned signing key, parses
// it strictly and checks that it is for exactly the account, app, env and
// epoch of c. Errors wrap [ErrBadSignature], [ErrWrongAccount] or envelope's
// parse errors.
func VerifyEnvAccess(raw, sig []byte, c AccessCheck) (*envelope.EnvAccess, error) {
	if !c.Cached {
		if err := verifySig("env access", c.PublicKey, raw, sig); err != nil {
			return nil, err
		}
	}
	a, err := envelope.ParseEnvAccess(raw)
	if err != nil {
		return nil, fmt.Errorf("vault: verify env access: %w", err)
	}
	if !bytes.Equal(a.AccountID, c.AccountID) || !bytes.Equal(a.AppID, c.AppID) || !bytes.Equal(a.EnvID, c.EnvID) || a.Epoch != c.Epoch {
		return nil, fmt.Errorf("vault: verify env access: %w", ErrWrongAccount)
	}
	return a, nil
}

// GrantHash is SHA-256 of a grant's signed bytes, as an allowed set lists it.
func GrantHash(grantRaw []byte) []byte {
	h := sha256.Sum256(grantRaw)
	return h[:]
}

// CheckAllowed requires this machine to be in the verified allowed set a
// under exactly the grant grantRaw (the one it verified). Errors wrap
// [ErrNotAllowed].
func (mk *MachineKey) CheckAllowed(a *envelope.EnvAccess, grantRaw []byte) error {
	id := mk.ID()
	e, ok := a.Lookup(id[:])
	if !ok {
		return fmt.Errorf("vault: check allowed set of epoch %d: %w", a.Epoch, ErrNotAllowed)
	}
	if !hmac.Equal(e.GrantHash, GrantHash(grantRaw)) {
		return fmt.Errorf("vault: check allowed set of epoch %d: listed under another grant: %w", a.Epoch, ErrNotAllowed)
	}
	return nil
}

// EKIDOf returns ek_id of ek for scope s (crypto.md §1.4), the commitment an
// allowed set and a manifest carry. Errors wrap envelope.ErrMalformed.
func EKIDOf(ek *EnvKey, s Scope) ([]byte, error) {
	c, err := NewEnvCipher(ek, s)
	if err != nil {
		return nil, err
	}
	defer c.Wipe()
	id := c.EKID()
	return id[:], nil
}

// cacheMsg is lp("ov/v1/machine-cache") ‖ lp(machine_id) ‖ lp(app) ‖ lp(env) ‖ entry.
func cacheMsg(machineID []byte, appName, envName string, entry []byte) []byte {
	b := envelope.AppendLPString(nil, labelMachineCache)
	b = envelope.AppendLP(b, machineID)
	b = envelope.AppendLPString(b, appName)
	b = envelope.AppendLPString(b, envName)
	return append(b, entry...)
}

// CacheMAC authenticates a cache entry of this machine (crypto.md §2.9):
// HMAC-SHA256(derive(MK, "ov/v1/machine-cache", lp(machine_id)), lp(label) ‖
// lp(machine_id) ‖ lp(app) ‖ lp(env) ‖ entry). entry is the exact stored bytes,
// fetch time included, so nobody without the machine key can change the time
// or move an entry to another (app, env) or machine.
func (mk *MachineKey) CacheMAC(appName, envName string, entry []byte) [sha256.Size]byte {
	id := mk.ID()
	k := derive(&mk.Key, labelMachineCache, envelope.AppendLP(nil, id[:]))
	defer k.Wipe()
	h := hmac.New(sha256.New, k.arr()[:])
	h.Write(cacheMsg(id[:], appName, envName, entry))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// VerifyCacheMAC recomputes [MachineKey.CacheMAC] and compares in constant
// time. Errors wrap [ErrBadCacheMAC].
func (mk *MachineKey) VerifyCacheMAC(appName, envName string, entry, mac []byte) error {
	want := mk.CacheMAC(appName, envName, entry)
	if !hmac.Equal(want[:], mac) {
		return fmt.Errorf("vault: verify cache entry: %w", ErrBadCacheMAC)
	}
	return nil
}
