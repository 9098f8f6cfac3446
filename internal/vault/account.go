// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// PasswordKeys are the outputs of the two-secret KDF for one account
// (crypto.md §1.1–1.2): the KEK, the key check and login_auth. The KEK never
// leaves this type: the account key can only be unwrapped through
// [PasswordKeys.UnwrapAccountKey], which compares the key check first.
type PasswordKeys struct {
	accountID []byte
	params    KDFParams
	kek       Key
	keyCheck  [KeyLen]byte
	loginAuth Key
}

// DerivePasswordKeys runs pw_key = Argon2id(NFKC(password), salt, t, m, p),
// PRK = HKDF-Extract("OpaqueVault v1 2SKD", pw_key ‖ ASK), and expands KEK,
// key_check and login_auth, each bound to accountID. password is bytes, never
// a string; the caller wipes it. It refuses an empty password, a 16-byte
// account id of another length, and parameters that fail
// [KDFParams.Validate]. Errors wrap [ErrKDFParams] or envelope.ErrMalformed.
//
// It allocates m KiB (256 MiB by default) and takes seconds by design.
func DerivePasswordKeys(password []byte, ask *AccountSecretKey, accountID []byte, p KDFParams) (*PasswordKeys, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkID("account id", accountID); err != nil {
		return nil, fmt.Errorf("vault: derive password keys: %w", err)
	}
	if len(password) == 0 {
		return nil, errors.New("vault: derive password keys: empty password")
	}
	pwKey := argon2Key(password, p)
	defer pwKey.Wipe()
	prk := extract2SKD(&pwKey, ask)
	defer prk.Wipe()
	pk := &PasswordKeys{
		accountID: bytes.Clone(accountID),
		params:    KDFParams{Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads, Salt: bytes.Clone(p.Salt)},
	}
	ctx := lpAID(accountID)
	pk.kek = expand(&prk, labelKEK, ctx)
	kc := expand(&prk, labelKeyCheck, ctx)
	copy(pk.keyCheck[:], kc.arr()[:])
	kc.Wipe()
	pk.loginAuth = expand(&prk, labelLoginAuth, ctx)
	return pk, nil
}

// argon2Key is pw_key = Argon2id(NFKC(password), salt, t, m, p, 32).
func argon2Key(password []byte, p KDFParams) Key {
	pw := norm.NFKC.Append(make([]byte, 0, len(password)+16), password...)
	defer clear(pw)
	out := argon2.IDKey(pw, p.Salt, p.Time, p.MemoryKiB, p.Threads, KeyLen)
	defer clear(out)
	return keyFrom(out)
}

// extract2SKD is PRK = HKDF-Extract(salt="OpaqueVault v1 2SKD", IKM = pw_key ‖ ASK).
func extract2SKD(pwKey *Key, ask *AccountSecretKey) Key {
	ikm := make([]byte, 0, 2*KeyLen)
	ikm = append(ikm, pwKey.arr()[:]...)
	ikm = append(ikm, ask.arr()[:]...)
	defer clear(ikm)
	prk, err := hkdf.Extract(sha256.New, ikm, []byte(label2SKDSalt))
	if err != nil {
		panic("vault: hkdf: " + err.Error())
	}
	defer clear(prk)
	return keyFrom(prk)
}

// KeyCheck returns key_check, stored in the config and on the server. It is a
// commitment to the PRK, useless without the ASK.
func (pk *PasswordKeys) KeyCheck() [KeyLen]byte { return pk.keyCheck }

// LoginAuth returns login_auth, the enrollment credential sent to the server
// (which stores [PasswordKeys.LoginVerifier]). The Key belongs to pk; Wipe
// wipes it.
func (pk *PasswordKeys) LoginAuth() *Key { return &pk.loginAuth }

// LoginVerifier returns SHA-256(lp("ov/v1/login-verifier") ‖ login_auth).
func (pk *PasswordKeys) LoginVerifier() [KeyLen]byte {
	return envelope.LoginVerifier(pk.loginAuth.arr())
}

// CheckKeyCheck compares stored with the derived key_check in constant time.
// It returns an error wrapping [ErrWrongPassword] on mismatch.
func (pk *PasswordKeys) CheckKeyCheck(stored []byte) error {
	if subtle.ConstantTimeCompare(pk.keyCheck[:], stored) != 1 {
		return fmt.Errorf("vault: unlock account: %w", ErrWrongPassword)
	}
	return nil
}

// WrapAccountKey seals ak under the KEK with a fresh nonce:
// hdr ‖ nonce ‖ Seal(KEK, AK, AAD = hdr ‖ lp("ov/v1/wrap/account-key") ‖ lp(aid)
// ‖ u32(ak_version) ‖ KDFParams.Encode()). The result is 74 bytes.
func (pk *PasswordKeys) WrapAccountKey(ak *AccountKey, akVersion uint32) []byte {
	return sealKey(&pk.kek, newNonce(), &ak.Key, accountKeyAAD(pk.accountID, akVersion, pk.params))
}

// UnwrapAccountKey first compares storedKeyCheck with the derived key check
// in constant time and only then opens wrapped (exactly 74 bytes) under the
// KEK. Errors wrap [ErrWrongPassword], [ErrAuth], envelope.ErrBadLength or
// envelope.ErrBadHeader.
func (pk *PasswordKeys) UnwrapAccountKey(storedKeyCheck, wrapped []byte, akVersion uint32) (*AccountKey, error) {
	if err := pk.CheckKeyCheck(storedKeyCheck); err != nil {
		return nil, err
	}
	return unwrapAccountKey(&pk.kek, wrapped, pk.accountID, akVersion, pk.params)
}

func unwrapAccountKey(kek *Key, wrapped, accountID []byte, akVersion uint32, p KDFParams) (*AccountKey, error) {
	k, err := openKey(kek, wrapped, accountKeyAAD(accountID, akVersion, p))
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap account key: %w", err)
	}
	return &AccountKey{k}, nil
}

func accountKeyAAD(accountID []byte, akVersion uint32, p KDFParams) []byte {
	enc := p.Encode()
	b := aadPrefix(labelWrapAccountKey, 2+len(accountID)+4+len(enc))
	b = envelope.AppendLP(b, accountID)
	b = envelope.AppendU32(b, akVersion)
	return append(b, enc...)
}

// Wipe clears the KEK, key check and login_auth.
func (pk *PasswordKeys) Wipe() {
	pk.kek.Wipe()
	pk.loginAuth.Wipe()
	clear(pk.keyCheck[:])
}
