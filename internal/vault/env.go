// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// Scope names one environment key generation: the 16-byte ids, the epoch,
// and the app and env names. Names are bound only into the EK wrap under the
// account key (so the server cannot answer "myapp/production" with staging's
// ids); records, manifests and machine wraps bind the immutable ids.
type Scope struct {
	AccountID []byte // 16 bytes
	AppID     []byte // 16 bytes
	EnvID     []byte // 16 bytes
	Epoch     uint32
	AppName   string // NFC-normalized by the functions that use it
	EnvName   string
}

func (s *Scope) checkIDs() error {
	if err := checkID("account id", s.AccountID); err != nil {
		return err
	}
	if err := checkID("app id", s.AppID); err != nil {
		return err
	}
	return checkID("env id", s.EnvID)
}

// ctx is lp(aid) ‖ lp(app_id) ‖ lp(env_id) ‖ u32(epoch).
func (s *Scope) ctx() []byte {
	b := make([]byte, 0, 3*(2+idLen)+4)
	b = envelope.AppendLP(b, s.AccountID)
	b = envelope.AppendLP(b, s.AppID)
	b = envelope.AppendLP(b, s.EnvID)
	return envelope.AppendU32(b, s.Epoch)
}

// envKeyAAD is hdr ‖ lp("ov/v1/wrap/env-key") ‖ ctx ‖ lp(app_name) ‖ lp(env_name).
func (s *Scope) envKeyAAD() ([]byte, error) {
	if err := s.checkIDs(); err != nil {
		return nil, err
	}
	app, err := envelope.NormalizeName(s.AppName)
	if err != nil {
		return nil, fmt.Errorf("app name: %w", err)
	}
	env, err := envelope.NormalizeName(s.EnvName)
	if err != nil {
		return nil, fmt.Errorf("env name: %w", err)
	}
	c := s.ctx()
	b := aadPrefix(labelWrapEnvKey, len(c)+4+len(app)+len(env))
	b = append(b, c...)
	b = envelope.AppendLPString(b, app)
	return envelope.AppendLPString(b, env), nil
}

// WrapEnvKey seals ek under ak with a fresh nonce (74 bytes), AAD binding the
// ids, the epoch and both names (crypto.md §1.4). Errors wrap
// envelope.ErrMalformed or envelope.ErrBadName.
func (ak *AccountKey) WrapEnvKey(ek *EnvKey, s Scope) ([]byte, error) {
	return ak.wrapEnvKey(ek, s, newNonce())
}

func (ak *AccountKey) wrapEnvKey(ek *EnvKey, s Scope, nonce []byte) ([]byte, error) {
	aad, err := s.envKeyAAD()
	if err != nil {
		return nil, fmt.Errorf("vault: wrap environment key: %w", err)
	}
	return sealKey(&ak.Key, nonce, &ek.Key, aad), nil
}

// UnwrapEnvKey opens a wrap made by [AccountKey.WrapEnvKey] for exactly this
// scope, names included. Errors wrap [ErrAuth], envelope.ErrBadLength,
// envelope.ErrBadHeader, envelope.ErrMalformed or envelope.ErrBadName.
func (ak *AccountKey) UnwrapEnvKey(wrapped []byte, s Scope) (*EnvKey, error) {
	aad, err := s.envKeyAAD()
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap environment key: %w", err)
	}
	k, err := openKey(&ak.Key, wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap environment key %q/%q: %w", s.AppName, s.EnvName, err)
	}
	return &EnvKey{k}, nil
}

// EnvCipher holds the keys derived from one environment key for one scope
// (crypto.md §1.4–1.5): the record key, the name-blinding key and the ek_id
// commitment. It seals and opens secret records and blinds names. Its methods
// other than Wipe are safe for concurrent use.
type EnvCipher struct {
	scope Scope // ids and epoch only
	enc   Key
	blind Key
	ekID  [ekIDLen]byte
}

// NewEnvCipher derives enc_key, blind_key and ek_id from ek with
// ctx = lp(aid) ‖ lp(app_id) ‖ lp(env_id) ‖ u32(epoch). s's names are not
// used. Errors wrap envelope.ErrMalformed.
func NewEnvCipher(ek *EnvKey, s Scope) (*EnvCipher, error) {
	if err := s.checkIDs(); err != nil {
		return nil, fmt.Errorf("vault: derive environment keys: %w", err)
	}
	c := &EnvCipher{scope: Scope{
		AccountID: append([]byte(nil), s.AccountID...),
		AppID:     append([]byte(nil), s.AppID...),
		EnvID:     append([]byte(nil), s.EnvID...),
		Epoch:     s.Epoch,
	}}
	ctx := c.scope.ctx()
	c.enc = derive(&ek.Key, labelSecretEnc, ctx)
	c.blind = derive(&ek.Key, labelNameBlind, ctx)
	id := derive(&ek.Key, labelEKID, ctx)
	copy(c.ekID[:], id.arr()[:ekIDLen])
	id.Wipe()
	return c, nil
}

// EKID returns ek_id = derive(EK, "ov/v1/ek-id", ctx)[:16], the public
// commitment a manifest carries.
func (c *EnvCipher) EKID() [ekIDLen]byte { return c.ekID }

// Blind returns HMAC-SHA256(blind_key, lp(NFC(name)))[:16], the only form of
// a secret name the server sees. Errors wrap envelope.ErrBadName.
func (c *EnvCipher) Blind(name string) ([blindLen]byte, error) {
	n, err := envelope.NormalizeName(name)
	if err != nil {
		return [blindLen]byte{}, fmt.Errorf("vault: blind name: %w", err)
	}
	return c.blindNFC(n), nil
}

func (c *EnvCipher) blindNFC(name string) [blindLen]byte {
	h := hmac.New(sha256.New, c.blind.arr()[:])
	h.Write(envelope.AppendLPString(nil, name))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var out [blindLen]byte
	copy(out[:], sum[:blindLen])
	return out
}

// recordAAD is hdr ‖ lp("ov/v1/secret") ‖ ctx ‖ lp(NFC(name)) ‖ u64(version).
func (c *EnvCipher) recordAAD(name string, version uint64) []byte {
	ctx := c.scope.ctx()
	b := aadPrefix(labelSecret, len(ctx)+2+len(name)+8)
	b = append(b, ctx...)
	b = envelope.AppendLPString(b, name)
	return envelope.AppendU64(b, version)
}

// Seal encrypts value as the record of secret name at version, with a fresh
// random nonce: hdr ‖ nonce ‖ XChaCha20-Poly1305(enc_key, nonce,
// lp(NFC(name)) ‖ value, AAD). value is at most envelope.MaxValueLen bytes.
// Errors wrap envelope.ErrBadName or envelope.ErrBadLength.
func (c *EnvCipher) Seal(name string, version uint64, value []byte) ([]byte, error) {
	return c.seal(name, version, value, newNonce())
}

func (c *EnvCipher) seal(name string, version uint64, value, nonce []byte) ([]byte, error) {
	n, err := envelope.NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("vault: seal secret: %w", err)
	}
	if len(value) > maxValueLen {
		return nil, fmt.Errorf("vault: seal secret %q: value is %d bytes, at most %d: %w", n, len(value), maxValueLen, envelope.ErrBadLength)
	}
	pt := make([]byte, 0, 2+len(n)+len(value))
	pt = envelope.AppendLPString(pt, n)
	pt = append(pt, value...)
	defer clear(pt)
	aead, err := chacha20poly1305.NewX(c.enc.arr()[:])
	if err != nil {
		panic("vault: xchacha20poly1305: " + err.Error())
	}
	hdr := envelope.Header()
	out := make([]byte, 0, hdrLen+nonceLen+len(pt)+aead.Overhead())
	out = append(out, hdr[:]...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, pt, c.recordAAD(n, version)), nil
}

// Open decrypts the record of secret name at version and returns its value;
// the caller wipes it. It checks the record's length and header first, and
// rejects a record whose embedded name differs from NFC(name). Errors wrap
// [ErrAuth], [ErrRecordMismatch], envelope.ErrBadName, envelope.ErrBadLength
// or envelope.ErrBadHeader.
func (c *EnvCipher) Open(name string, version uint64, record []byte) ([]byte, error) {
	n, err := envelope.NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("vault: open secret: %w", err)
	}
	v, err := c.open(n, version, record)
	if err != nil {
		return nil, fmt.Errorf("vault: open secret %q: %w", n, err)
	}
	return v, nil
}

func (c *EnvCipher) open(name string, version uint64, record []byte) ([]byte, error) {
	if err := envelope.CheckRecord(record); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(c.enc.arr()[:])
	if err != nil {
		panic("vault: xchacha20poly1305: " + err.Error())
	}
	pt, err := aead.Open(nil, record[hdrLen:hdrLen+nonceLen], record[hdrLen+nonceLen:], c.recordAAD(name, version))
	if err != nil {
		return nil, ErrAuth
	}
	if len(pt) < 2 || int(binary.BigEndian.Uint16(pt)) != len(name) || len(pt) < 2+len(name) ||
		subtle.ConstantTimeCompare(pt[2:2+len(name)], []byte(name)) != 1 {
		clear(pt)
		return nil, fmt.Errorf("embedded name differs: %w", ErrRecordMismatch)
	}
	return pt[2+len(name):], nil
}

// OpenUnnamed decrypts a record whose name the caller does not know (`ov
// secret list`). It reads the candidate name from the start of the plaintext
// without authentication, then opens the record with that name in the AAD, so
// the name it returns is authenticated like the value. Callers with a
// manifest also check that the name's blind id matches the entry (see
// [EnvReader.OpenEntry]). Errors wrap [ErrAuth], envelope.ErrBadLength or
// envelope.ErrBadHeader.
func (c *EnvCipher) OpenUnnamed(version uint64, record []byte) (name string, value []byte, err error) {
	if err := envelope.CheckRecord(record); err != nil {
		return "", nil, fmt.Errorf("vault: open secret: %w", err)
	}
	name, err = c.peekName(record)
	if err != nil {
		return "", nil, fmt.Errorf("vault: open secret: %w", err)
	}
	v, err := c.open(name, version, record)
	if err != nil {
		return "", nil, fmt.Errorf("vault: open secret %q: %w", name, err)
	}
	return name, v, nil
}

// peekName decrypts lp(name) at the start of the record's plaintext with the
// raw XChaCha20 keystream (block counter 1, as the AEAD uses for its
// plaintext). The result is unauthenticated until the AEAD open that follows.
func (c *EnvCipher) peekName(record []byte) (string, error) {
	ct := record[hdrLen+nonceLen : len(record)-envelope.TagLen]
	s, err := chacha20.NewUnauthenticatedCipher(c.enc.arr()[:], record[hdrLen:hdrLen+nonceLen])
	if err != nil {
		panic("vault: xchacha20: " + err.Error())
	}
	s.SetCounter(1)
	var l [2]byte
	s.XORKeyStream(l[:], ct[:2])
	n := int(binary.BigEndian.Uint16(l[:]))
	if n == 0 || n > envelope.MaxNameLen || 2+n > len(ct) {
		return "", ErrAuth
	}
	name := make([]byte, n)
	s.XORKeyStream(name, ct[2:2+n])
	if envelope.CheckName(string(name)) != nil {
		return "", ErrAuth
	}
	return string(name), nil
}

// Entry returns the manifest entry for a record sealed by c: the name's blind
// id, the version and SHA-256(record). Errors wrap envelope.ErrBadName.
func (c *EnvCipher) Entry(name string, version uint64, record []byte) (envelope.ManifestEntry, error) {
	b, err := c.Blind(name)
	if err != nil {
		return envelope.ManifestEntry{}, err
	}
	h := envelope.RecordHash(record)
	return envelope.ManifestEntry{Blind: b[:], Version: version, RecordHash: h[:]}, nil
}

// Wipe clears the derived keys.
func (c *EnvCipher) Wipe() {
	c.enc.Wipe()
	c.blind.Wipe()
}
