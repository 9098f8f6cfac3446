// SPDX-License-Identifier: Apache-2.0

// Package remote is the client side of the zero-knowledge protocol: it creates and unlocks accounts,
// reads environments from ov-server and verifies them (signed manifest, rollback floor, environment
// key commitment, record hashes) before decrypting, and writes them back with a compare-and-swap on
// the manifest sequence.
//
// It never sends a key, a password or a plaintext value to the server, and it never trusts anything
// the server returns before it is verified.
package remote

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// ErrSigningKeyMismatch means the server's signing key wrap does not open to the pinned public key.
var ErrSigningKeyMismatch = errors.New("account signing key differs from the pinned one")

// Account is an unlocked account: its account key and signing key. Wipe it when done.
type Account struct {
	ID        []byte // 16 bytes
	AKVersion uint32
	AK        *vault.AccountKey
	Sign      *vault.SigningKey
	SignPub   ed25519.PublicKey
}

// Wipe clears the keys.
func (a *Account) Wipe() {
	if a == nil {
		return
	}
	if a.AK != nil {
		a.AK.Wipe()
	}
	if a.Sign != nil {
		a.Sign.Wipe()
	}
}

// Device is a freshly drawn device API key: the token stays on the device, the verifier goes to the server.
type Device struct {
	Wire  api.NewDevice
	Token string
}

// NewDevice draws a device API key named name.
func NewDevice(name string) Device {
	var id [envelope.APIKeyIDLen]byte
	var secret [envelope.SecretLen]byte
	mustRand(id[:])
	mustRand(secret[:])
	defer clear(secret[:])
	tok := envelope.FormatAPIToken(id, &secret)
	defer clear(tok)
	v := envelope.APIKeyVerifier(&secret)
	return Device{
		Wire:  api.NewDevice{KeyID: hex.EncodeToString(id[:]), Verifier: v[:], Name: name},
		Token: string(tok),
	}
}

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("remote: crypto/rand failed: " + err.Error())
	}
}

// NewID returns a random 16-byte id in hex.
func NewID() string {
	var b [envelope.IDLen]byte
	mustRand(b[:])
	return hex.EncodeToString(b[:])
}

// KDFToWire converts vault parameters to the wire form.
func KDFToWire(p vault.KDFParams) api.KDF {
	return api.KDF{T: p.Time, M: p.MemoryKiB, P: p.Threads, Salt: bytes.Clone(p.Salt)}
}

// KDFFromWire converts and validates wire parameters (the floor stops a server downgrading the work).
func KDFFromWire(k api.KDF) (vault.KDFParams, error) {
	p := vault.KDFParams{Time: k.T, MemoryKiB: k.M, Threads: k.P, Salt: bytes.Clone(k.Salt)}
	if err := p.Validate(); err != nil {
		return vault.KDFParams{}, err
	}
	return p, nil
}

// Registration is a new account ready to upload.
type Registration struct {
	Request *api.RegisterRequest
	ASK     *vault.AccountSecretKey
	Account *Account
}

// NewAccount draws the account's keys (account id, Account Secret Key, account key, signing key),
// derives the password keys with params, and returns the registration request.
func NewAccount(email string, password []byte, params vault.KDFParams, dev Device) (*Registration, error) {
	var aid [envelope.IDLen]byte
	mustRand(aid[:])
	ask := vault.NewAccountSecretKey()
	pk, err := vault.DerivePasswordKeys(password, ask, aid[:], params)
	if err != nil {
		ask.Wipe()
		return nil, err
	}
	defer pk.Wipe()
	acct := &Account{ID: aid[:], AKVersion: 1, AK: vault.NewAccountKey(), Sign: vault.NewSigningKey()}
	acct.SignPub = acct.Sign.Public()
	wSign, err := acct.AK.WrapSigningKey(acct.Sign, acct.ID, acct.AKVersion)
	if err != nil {
		acct.Wipe()
		ask.Wipe()
		return nil, err
	}
	kc := pk.KeyCheck()
	lv := pk.LoginVerifier()
	req := &api.RegisterRequest{
		Email:           email,
		AccountID:       hex.EncodeToString(acct.ID),
		KDF:             KDFToWire(params),
		WrappedAK:       pk.WrapAccountKey(acct.AK, acct.AKVersion),
		AKVersion:       acct.AKVersion,
		KeyCheck:        kc[:],
		LoginVerifier:   lv[:],
		WrappedSignSeed: wSign,
		SignPub:         bytes.Clone(acct.SignPub),
		Device:          dev.Wire,
	}
	return &Registration{Request: req, ASK: ask, Account: acct}, nil
}

// PasswordKeys derives the password keys of an account from wire parameters (validated first).
func PasswordKeys(password []byte, ask *vault.AccountSecretKey, accountID string, k api.KDF) (*vault.PasswordKeys, error) {
	aid, err := DecodeID("account id", accountID)
	if err != nil {
		return nil, err
	}
	p, err := KDFFromWire(k)
	if err != nil {
		return nil, err
	}
	return vault.DerivePasswordKeys(password, ask, aid, p)
}

// Unlock opens an account bundle with password keys: it compares the key check (constant time) before
// any unwrap, unwraps the account key and the signing key, and requires the signing key to match
// pinnedSignPub when one is pinned. Errors wrap vault.ErrWrongPassword, vault.ErrAuth or
// ErrSigningKeyMismatch.
func Unlock(pk *vault.PasswordKeys, b *api.AccountBundle, pinnedSignPub []byte) (*Account, error) {
	aid, err := DecodeID("account id", b.AccountID)
	if err != nil {
		return nil, err
	}
	ak, err := pk.UnwrapAccountKey(b.KeyCheck, b.WrappedAK, b.AKVersion)
	if err != nil {
		return nil, err
	}
	sk, err := ak.UnwrapSigningKey(b.WrappedSignSeed, aid, b.AKVersion)
	if err != nil {
		ak.Wipe()
		return nil, fmt.Errorf("unlock account: %w", err)
	}
	pub := sk.Public()
	if len(pinnedSignPub) > 0 && subtle.ConstantTimeCompare(pub, pinnedSignPub) != 1 {
		ak.Wipe()
		sk.Wipe()
		return nil, fmt.Errorf("unlock account: %w", ErrSigningKeyMismatch)
	}
	return &Account{ID: aid, AKVersion: b.AKVersion, AK: ak, Sign: sk, SignPub: pub}, nil
}

// DecodeID decodes a 16-byte hex id.
func DecodeID(what, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != envelope.IDLen {
		return nil, fmt.Errorf("decode %s %q: want %d hex digits", what, s, 2*envelope.IDLen)
	}
	return b, nil
}
