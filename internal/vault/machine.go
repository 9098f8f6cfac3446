// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// MachineKeyFileLen is the exact size of a machine key file: MK itself
// (crypto.md §2.6, D12).
const MachineKeyFileLen = KeyLen

// MachineKey is MK, the 32 random bytes of a machine key file (crypto.md §2).
// From it derive machine_id, machine_auth (the bearer credential), the X25519
// key that receives scoped EK wraps, and the pin key that authenticates the
// account signing public key. It is independent of the password and the KEK.
type MachineKey struct{ Key }

// NewMachineKey returns a fresh random machine key (`ov auth
// derive-machine-key`; the name is historical, the key is generated).
func NewMachineKey() *MachineKey { return &MachineKey{randomKey()} }

// ParseMachineKeyFile takes the contents of a machine key file, which must be
// exactly 32 bytes, and copies them into a MachineKey; the caller wipes b. Any
// other size is refused with an error naming the size found, and so is an
// all-zero file (a truncated or preallocated file, never a real key). Errors
// wrap [ErrBadKeyFile].
func ParseMachineKeyFile(b []byte) (*MachineKey, error) {
	if len(b) != MachineKeyFileLen {
		return nil, fmt.Errorf("vault: read machine key: file is %d bytes, want exactly %d: %w", len(b), MachineKeyFileLen, ErrBadKeyFile)
	}
	var zero [MachineKeyFileLen]byte
	if subtle.ConstantTimeCompare(b, zero[:]) == 1 {
		return nil, fmt.Errorf("vault: read machine key: file is all zero bytes: %w", ErrBadKeyFile)
	}
	return &MachineKey{keyFrom(b)}, nil
}

// ID returns machine_id = derive(MK, "ov/v1/machine-id")[:16].
func (mk *MachineKey) ID() [idLen]byte {
	k := derive(&mk.Key, labelMachineID, nil)
	defer k.Wipe()
	var id [idLen]byte
	copy(id[:], k.arr()[:idLen])
	return id
}

// Auth returns machine_auth = derive(MK, "ov/v1/machine-auth"), the bearer
// credential the machine presents (see [MachineKey.Token]). The caller wipes
// it.
func (mk *MachineKey) Auth() *Key {
	k := derive(&mk.Key, labelMachineAuth, nil)
	return &k
}

// Token returns the machine's bearer token "ovm_" ‖ base64url(machine_id ‖
// machine_auth). It is a credential: keep it out of logs and errors.
func (mk *MachineKey) Token() []byte {
	a := mk.Auth()
	defer a.Wipe()
	return envelope.FormatMachineToken(mk.ID(), a.arr())
}

// Verifier returns SHA-256(lp("ov/v1/machine-auth-verifier") ‖ machine_auth),
// what the issuing client uploads and the server stores.
func (mk *MachineKey) Verifier() [KeyLen]byte {
	a := mk.Auth()
	defer a.Wipe()
	return envelope.MachineVerifier(a.arr())
}

// x25519 returns the machine's X25519 private key, x_sk = derive(MK,
// "ov/v1/machine-x25519") (crypto/ecdh clamps it).
func (mk *MachineKey) x25519() *ecdh.PrivateKey {
	k := derive(&mk.Key, labelMachineX25519, nil)
	defer k.Wipe()
	sk, err := ecdh.X25519().NewPrivateKey(k.arr()[:])
	if err != nil {
		panic("vault: x25519: " + err.Error()) // only for a wrong length
	}
	return sk
}

// PublicKey returns x_pk = X25519(x_sk, 9), listed in the machine's grant;
// the owner wraps keys to it without ever holding MK.
func (mk *MachineKey) PublicKey() []byte { return mk.x25519().PublicKey().Bytes() }

// pinKey is derive(MK, "ov/v1/machine-pin", lp(aid) ‖ lp(machine_id)).
func (mk *MachineKey) pinKey(accountID []byte, machineID []byte) Key {
	ctx := envelope.AppendLP(nil, accountID)
	ctx = envelope.AppendLP(ctx, machineID)
	return derive(&mk.Key, labelMachinePin, ctx)
}

// pinMsg is lp("ov/v1/machine-pin") ‖ lp(aid) ‖ lp(machine_id) ‖ lp(account_sign_pub).
func pinMsg(accountID, machineID []byte, signPub ed25519.PublicKey) []byte {
	b := envelope.AppendLPString(nil, labelMachinePin)
	b = envelope.AppendLP(b, accountID)
	b = envelope.AppendLP(b, machineID)
	return envelope.AppendLP(b, signPub)
}

// PinMAC returns pin_mac = HMAC-SHA256(pin_key, pin_msg), computed by the
// issuing client (which holds MK for a moment and the authentic signing key
// from its config) and uploaded with the machine record (crypto.md §2.6).
// Errors wrap envelope.ErrMalformed.
func (mk *MachineKey) PinMAC(accountID []byte, signPub ed25519.PublicKey) ([sha256.Size]byte, error) {
	if err := checkPinInputs(accountID, signPub); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("vault: compute pin: %w", err)
	}
	return mk.pinMAC(accountID, signPub), nil
}

func checkPinInputs(accountID []byte, signPub ed25519.PublicKey) error {
	if err := checkID("account id", accountID); err != nil {
		return err
	}
	if len(signPub) != ed25519.PublicKeySize {
		return fmt.Errorf("signing key is %d bytes, want %d: %w", len(signPub), ed25519.PublicKeySize, envelope.ErrMalformed)
	}
	return nil
}

func (mk *MachineKey) pinMAC(accountID []byte, signPub ed25519.PublicKey) [sha256.Size]byte {
	id := mk.ID()
	k := mk.pinKey(accountID, id[:])
	defer k.Wipe()
	h := hmac.New(sha256.New, k.arr()[:])
	h.Write(pinMsg(accountID, id[:], signPub))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// VerifyPin recomputes the pin MAC for signPub as served and compares it with
// mac in constant time. Only after it succeeds may signPub be trusted for
// grants and manifests. Errors wrap [ErrBadPin].
func (mk *MachineKey) VerifyPin(accountID []byte, signPub ed25519.PublicKey, mac []byte) error {
	if err := checkPinInputs(accountID, signPub); err != nil {
		return fmt.Errorf("vault: verify pin: %v: %w", err, ErrBadPin)
	}
	want := mk.pinMAC(accountID, signPub)
	if !hmac.Equal(want[:], mac) {
		return fmt.Errorf("vault: verify pin: %w", ErrBadPin)
	}
	return nil
}

// VerifyGrant is [VerifyGrant] plus the checks that the grant names
// accountID, this machine's id and this machine's X25519 public key. Errors
// wrap those of VerifyGrant or [ErrGrantMismatch].
func (mk *MachineKey) VerifyGrant(pub ed25519.PublicKey, raw, sig, accountID []byte, now time.Time) (*envelope.Grant, error) {
	return mk.verifyGrant(pub, raw, sig, accountID, now, false)
}

// VerifyCachedGrant is [MachineKey.VerifyGrant] for a grant read back from this machine's offline
// cache, whose MAC ([MachineKey.VerifyCacheMAC]) proved it to be the grant verified when it was
// fetched: everything is checked (validity window against now, account, machine) except the
// signature (crypto.md §2.9 says why that loses nothing).
func (mk *MachineKey) VerifyCachedGrant(pub ed25519.PublicKey, raw, sig, accountID []byte, now time.Time) (*envelope.Grant, error) {
	return mk.verifyGrant(pub, raw, sig, accountID, now, true)
}

func (mk *MachineKey) verifyGrant(pub ed25519.PublicKey, raw, sig, accountID []byte, now time.Time, cached bool) (*envelope.Grant, error) {
	g, err := verifyGrant(pub, raw, sig, now, cached)
	if err != nil {
		return nil, err
	}
	id := mk.ID()
	if !bytes.Equal(g.AccountID, accountID) || !bytes.Equal(g.MachineID, id[:]) || !bytes.Equal(g.MachinePub, mk.PublicKey()) {
		return nil, fmt.Errorf("vault: verify grant: %w", ErrGrantMismatch)
	}
	return g, nil
}

// machineEnvInfo is lp("ov/v1/wrap/machine-env-key") ‖ lp(aid) ‖
// lp(machine_id) ‖ lp(app_id) ‖ lp(env_id) ‖ u32(epoch).
func machineEnvInfo(s *Scope, machineID []byte) []byte {
	b := envelope.AppendLPString(nil, labelWrapMachineEnvKey)
	b = envelope.AppendLP(b, s.AccountID)
	b = envelope.AppendLP(b, machineID)
	b = envelope.AppendLP(b, s.AppID)
	b = envelope.AppendLP(b, s.EnvID)
	return envelope.AppendU32(b, s.Epoch)
}

// machineAccountInfo is lp("ov/v1/wrap/machine-account-key") ‖ lp(aid) ‖
// lp(machine_id) ‖ u32(ak_version).
func machineAccountInfo(accountID, machineID []byte, akVersion uint32) []byte {
	b := envelope.AppendLPString(nil, labelWrapMachineAcctKey)
	b = envelope.AppendLP(b, accountID)
	b = envelope.AppendLP(b, machineID)
	return envelope.AppendU32(b, akVersion)
}

// WrapEnvKeyToMachine wraps ek to a machine's X25519 public key for one
// scope (ids and epoch; names unused), age-style: a fresh ephemeral key,
// wk = HKDF-SHA256(X25519(eph, x_pk), salt = eph_pub ‖ x_pk, info), and
// eph_pub ‖ hdr ‖ nonce ‖ Seal(wk, EK, AAD = hdr ‖ info), 106 bytes
// (crypto.md §2.1 step 2). The owner needs only machineID and machinePub from
// the machine's grant. Errors wrap envelope.ErrMalformed or [ErrAuth] (a
// low-order machine public key).
func WrapEnvKeyToMachine(ek *EnvKey, s Scope, machineID, machinePub []byte) ([]byte, error) {
	return wrapEnvKeyToMachine(ek, s, machineID, machinePub, nil, newNonce())
}

func wrapEnvKeyToMachine(ek *EnvKey, s Scope, machineID, machinePub []byte, eph *ecdh.PrivateKey, nonce []byte) ([]byte, error) {
	if err := s.checkIDs(); err != nil {
		return nil, fmt.Errorf("vault: wrap environment key to machine: %w", err)
	}
	if err := checkID("machine id", machineID); err != nil {
		return nil, fmt.Errorf("vault: wrap environment key to machine: %w", err)
	}
	w, err := wrapToMachine(&ek.Key, machinePub, machineEnvInfo(&s, machineID), eph, nonce)
	if err != nil {
		return nil, fmt.Errorf("vault: wrap environment key to machine: %w", err)
	}
	return w, nil
}

// UnwrapEnvKey opens a wrap made by [WrapEnvKeyToMachine] for this machine
// and exactly this scope (ids and epoch). Errors wrap [ErrAuth],
// envelope.ErrBadLength, envelope.ErrBadHeader or envelope.ErrMalformed.
func (mk *MachineKey) UnwrapEnvKey(wrap []byte, s Scope) (*EnvKey, error) {
	if err := s.checkIDs(); err != nil {
		return nil, fmt.Errorf("vault: unwrap machine environment key: %w", err)
	}
	id := mk.ID()
	k, err := unwrapFromMachine(mk.x25519(), wrap, machineEnvInfo(&s, id[:]))
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap machine environment key: %w", err)
	}
	return &EnvKey{k}, nil
}

// WrapAccountKeyToMachine wraps ak to a machine for an account-wide machine
// key (crypto.md §2.1 step 6): the same stanza as [WrapEnvKeyToMachine] with
// info lp("ov/v1/wrap/machine-account-key") ‖ lp(aid) ‖ lp(machine_id) ‖
// u32(ak_version). Errors wrap envelope.ErrMalformed or [ErrAuth].
func WrapAccountKeyToMachine(ak *AccountKey, accountID []byte, akVersion uint32, machineID, machinePub []byte) ([]byte, error) {
	return wrapAccountKeyToMachine(ak, accountID, akVersion, machineID, machinePub, nil, newNonce())
}

func wrapAccountKeyToMachine(ak *AccountKey, accountID []byte, akVersion uint32, machineID, machinePub []byte, eph *ecdh.PrivateKey, nonce []byte) ([]byte, error) {
	if err := checkID("account id", accountID); err != nil {
		return nil, fmt.Errorf("vault: wrap account key to machine: %w", err)
	}
	if err := checkID("machine id", machineID); err != nil {
		return nil, fmt.Errorf("vault: wrap account key to machine: %w", err)
	}
	w, err := wrapToMachine(&ak.Key, machinePub, machineAccountInfo(accountID, machineID, akVersion), eph, nonce)
	if err != nil {
		return nil, fmt.Errorf("vault: wrap account key to machine: %w", err)
	}
	return w, nil
}

// UnwrapAccountKey opens an account-wide wrap made by
// [WrapAccountKeyToMachine] for this machine. Errors wrap [ErrAuth],
// envelope.ErrBadLength, envelope.ErrBadHeader or envelope.ErrMalformed.
func (mk *MachineKey) UnwrapAccountKey(wrap, accountID []byte, akVersion uint32) (*AccountKey, error) {
	if err := checkID("account id", accountID); err != nil {
		return nil, fmt.Errorf("vault: unwrap machine account key: %w", err)
	}
	id := mk.ID()
	k, err := unwrapFromMachine(mk.x25519(), wrap, machineAccountInfo(accountID, id[:], akVersion))
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap machine account key: %w", err)
	}
	return &AccountKey{k}, nil
}

// machineWrapKey is wk = HKDF-SHA256(IKM = shared, salt = eph_pub ‖ x_pk, info).
func machineWrapKey(shared, ephPub, xPub, info []byte) Key {
	salt := make([]byte, 0, 2*x25519PublicKeyLen)
	salt = append(salt, ephPub...)
	salt = append(salt, xPub...)
	out, err := hkdf.Key(sha256.New, shared, salt, string(info), KeyLen)
	if err != nil {
		panic("vault: hkdf: " + err.Error())
	}
	defer clear(out)
	return keyFrom(out)
}

func machineAAD(info []byte) []byte {
	hdr := envelope.Header()
	return append(hdr[:], info...)
}

// wrapToMachine seals key to machinePub. eph nil means a fresh ephemeral key
// from crypto/rand; the known-answer test passes a fixed one.
func wrapToMachine(key *Key, machinePub, info []byte, eph *ecdh.PrivateKey, nonce []byte) ([]byte, error) {
	if len(machinePub) != x25519PublicKeyLen {
		return nil, fmt.Errorf("machine public key is %d bytes, want %d: %w", len(machinePub), x25519PublicKeyLen, envelope.ErrMalformed)
	}
	pub, err := ecdh.X25519().NewPublicKey(machinePub)
	if err != nil {
		return nil, fmt.Errorf("machine public key: %w", envelope.ErrMalformed)
	}
	if eph == nil {
		if eph, err = ecdh.X25519().GenerateKey(nil); err != nil {
			panic("vault: x25519: " + err.Error())
		}
	}
	shared, err := eph.ECDH(pub) // fails on an all-zero result (low-order point)
	if err != nil {
		return nil, fmt.Errorf("machine public key is a low-order point: %w", ErrAuth)
	}
	defer clear(shared)
	ephPub := eph.PublicKey().Bytes()
	wk := machineWrapKey(shared, ephPub, machinePub, info)
	defer wk.Wipe()
	out := make([]byte, 0, machineWrapLen)
	out = append(out, ephPub...)
	return append(out, sealKey(&wk, nonce, key, machineAAD(info))...), nil
}

// unwrapFromMachine checks the exact length and header, refuses an ephemeral
// key whose shared secret is all zero, and opens the wrapped key.
func unwrapFromMachine(xsk *ecdh.PrivateKey, wrap, info []byte) (Key, error) {
	if err := envelope.CheckMachineWrap(wrap); err != nil {
		return Key{}, err
	}
	ephPub := wrap[:x25519PublicKeyLen]
	pub, err := ecdh.X25519().NewPublicKey(ephPub)
	if err != nil {
		return Key{}, ErrAuth
	}
	shared, err := xsk.ECDH(pub)
	if err != nil {
		return Key{}, fmt.Errorf("ephemeral key is a low-order point: %w", ErrAuth)
	}
	defer clear(shared)
	wk := machineWrapKey(shared, ephPub, xsk.PublicKey().Bytes(), info)
	defer wk.Wipe()
	return openKey(&wk, wrap[x25519PublicKeyLen:], machineAAD(info))
}
