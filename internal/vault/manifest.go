// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// Manifest returns the manifest for c's scope and ek_id with the given
// sequence number, issue time (Unix seconds) and entries, ready for
// [SigningKey.SignManifest]. The write path uses seq = previous seq + 1.
func (c *EnvCipher) Manifest(seq, issuedAt uint64, entries []envelope.ManifestEntry) *envelope.Manifest {
	id := c.EKID()
	return &envelope.Manifest{
		AccountID: bytes.Clone(c.scope.AccountID),
		AppID:     bytes.Clone(c.scope.AppID),
		EnvID:     bytes.Clone(c.scope.EnvID),
		Epoch:     c.scope.Epoch,
		EKID:      id[:],
		Seq:       seq,
		IssuedAt:  issuedAt,
		Entries:   entries,
	}
}

// ManifestCheck is what a reader knows before it trusts a manifest: the
// pinned account signing key, the environment it asked for, and its rollback
// floor.
type ManifestCheck struct {
	PublicKey ed25519.PublicKey // pinned account signing public key
	AccountID []byte            // 16 bytes
	AppID     []byte            // 16 bytes
	EnvID     []byte            // 16 bytes
	// HighWater is the lowest acceptable seq: the highest seq this client
	// has verified before (its local state) and, for a machine, at least the
	// grant scope's seq_min.
	HighWater uint64
	// Cached means that raw and sig were read back from a machine's offline cache after its MAC
	// verified ([MachineKey.VerifyCacheMAC]): they are the manifest verified when it was fetched,
	// and the signature is not verified again; every other check is (crypto.md §2.9).
	Cached bool
}

// VerifyManifest verifies sig over raw with c.PublicKey, then parses raw
// strictly, checks that it is for c's account, app and env, and that its seq
// is not below c.HighWater. Only the signature check touches raw before it is
// authenticated. Errors wrap [ErrBadSignature], [ErrWrongEnv],
// [ErrRollback] or envelope's parse errors.
func VerifyManifest(raw, sig []byte, c ManifestCheck) (*envelope.Manifest, error) {
	if !c.Cached {
		if err := verifySig("manifest", c.PublicKey, raw, sig); err != nil {
			return nil, err
		}
	}
	m, err := envelope.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("vault: verify manifest: %w", err)
	}
	if !bytes.Equal(m.AccountID, c.AccountID) || !bytes.Equal(m.AppID, c.AppID) || !bytes.Equal(m.EnvID, c.EnvID) {
		return nil, fmt.Errorf("vault: verify manifest: %w", ErrWrongEnv)
	}
	if err := CheckHighWater(m, c.HighWater); err != nil {
		return nil, err
	}
	return m, nil
}

// CheckHighWater returns an error wrapping [ErrRollback] if m.Seq is below
// highWater. After a successful read the caller raises its stored high-water
// mark to m.Seq.
func CheckHighWater(m *envelope.Manifest, highWater uint64) error {
	if m.Seq < highWater {
		return fmt.Errorf("vault: check manifest: seq %d below high-water mark %d: %w", m.Seq, highWater, ErrRollback)
	}
	return nil
}

// EnvReader opens the records listed by a verified manifest (crypto.md §1.6
// read path, after the signature and freshness checks).
type EnvReader struct {
	m *envelope.Manifest
	c *EnvCipher
}

// NewEnvReader derives the record keys from ek for the manifest's scope
// (including its epoch) and requires EKID(ek) to equal the manifest's ek_id,
// so a server-chosen EK is refused. m must come from [VerifyManifest]. Errors
// wrap [ErrEKMismatch] or envelope.ErrMalformed.
func NewEnvReader(m *envelope.Manifest, ek *EnvKey) (*EnvReader, error) {
	c, err := NewEnvCipher(ek, Scope{AccountID: m.AccountID, AppID: m.AppID, EnvID: m.EnvID, Epoch: m.Epoch})
	if err != nil {
		return nil, err
	}
	id := c.EKID()
	if subtle.ConstantTimeCompare(id[:], m.EKID) != 1 {
		c.Wipe()
		return nil, fmt.Errorf("vault: open environment: %w", ErrEKMismatch)
	}
	return &EnvReader{m: m, c: c}, nil
}

// Manifest returns the verified manifest.
func (r *EnvReader) Manifest() *envelope.Manifest { return r.m }

// Lookup returns the entry of secret name. A name missing from the manifest
// is an error, never a silent gap. Errors wrap [ErrNotInManifest] or
// envelope.ErrBadName.
func (r *EnvReader) Lookup(name string) (envelope.ManifestEntry, error) {
	b, err := r.c.Blind(name)
	if err != nil {
		return envelope.ManifestEntry{}, err
	}
	e, ok := r.m.Lookup(b[:])
	if !ok {
		return envelope.ManifestEntry{}, fmt.Errorf("vault: look up secret %q: %w", name, ErrNotInManifest)
	}
	return e, nil
}

// Open checks that record's SHA-256 equals name's manifest entry and opens
// it at the entry's version. Errors wrap [ErrNotInManifest],
// [ErrRecordMismatch], [ErrAuth] or envelope errors.
func (r *EnvReader) Open(name string, record []byte) ([]byte, error) {
	e, err := r.Lookup(name)
	if err != nil {
		return nil, err
	}
	if err := checkRecordHash(e, record); err != nil {
		return nil, fmt.Errorf("vault: open secret %q: %w", name, err)
	}
	return r.c.Open(name, e.Version, record)
}

// OpenEntry opens the record of manifest entry e without knowing its name
// (`ov secret list`): it checks the hash, opens the record at e.Version,
// and requires the authenticated name to blind to e.Blind. Errors wrap
// [ErrRecordMismatch], [ErrAuth] or envelope errors.
func (r *EnvReader) OpenEntry(e envelope.ManifestEntry, record []byte) (name string, value []byte, err error) {
	if err := checkRecordHash(e, record); err != nil {
		return "", nil, fmt.Errorf("vault: open secret: %w", err)
	}
	name, value, err = r.c.OpenUnnamed(e.Version, record)
	if err != nil {
		return "", nil, err
	}
	b := r.c.blindNFC(name)
	if subtle.ConstantTimeCompare(b[:], e.Blind) != 1 {
		clear(value)
		return "", nil, fmt.Errorf("vault: open secret %q: blind id differs from the entry's: %w", name, ErrRecordMismatch)
	}
	return name, value, nil
}

func checkRecordHash(e envelope.ManifestEntry, record []byte) error {
	h := envelope.RecordHash(record)
	if subtle.ConstantTimeCompare(h[:], e.RecordHash) != 1 {
		return fmt.Errorf("record hash differs from the manifest's: %w", ErrRecordMismatch)
	}
	return nil
}

// Wipe clears the derived record keys.
func (r *EnvReader) Wipe() { r.c.Wipe() }

// ReadRequest is everything the read path needs (crypto.md §1.6 and §2.2).
type ReadRequest struct {
	ManifestCheck
	Manifest  []byte // raw manifest bytes as served
	Signature []byte // its Ed25519 signature
	// EnvKey returns the environment key for the manifest's (signed) epoch:
	// an agent looks it up in its keyring, a machine unwraps its wrap for
	// that epoch with [MachineKey.UnwrapEnvKey]. It is called only after the
	// signature, environment and rollback checks pass. ReadSecrets does not
	// wipe the key (it may be the agent's own); a caller that made a fresh
	// one wipes it afterwards.
	EnvKey func(epoch uint32) (*EnvKey, error)
	// Names are the secrets wanted; each must be in the manifest.
	Names []string
	// Records holds the fetched records by blind id (see [EnvReader.Lookup]
	// or [EnvCipher.Blind] for the ids to fetch).
	Records map[[envelope.BlindLen]byte][]byte
}

// Secret is one verified, decrypted secret. Value is the caller's to wipe.
type Secret struct {
	Name    string
	Version uint64
	Value   []byte
}

// ReadSecrets runs the whole read path: verify the manifest's signature,
// environment and seq ≥ HighWater; get EK for its epoch and require
// EKID(EK) = ek_id; for each name require a manifest entry, a fetched record
// whose SHA-256 and version match it, and a record that opens. It returns
// the secrets in the order of req.Names and the manifest (whose Seq the caller
// stores as its new high-water mark). On error no values are returned. Errors
// wrap [ErrBadSignature], [ErrWrongEnv], [ErrRollback], [ErrEKMismatch],
// [ErrNotInManifest], [ErrRecordMismatch], [ErrAuth], or what EnvKey returns.
func ReadSecrets(req *ReadRequest) ([]Secret, *envelope.Manifest, error) {
	m, err := VerifyManifest(req.Manifest, req.Signature, req.ManifestCheck)
	if err != nil {
		return nil, nil, err
	}
	ek, err := req.EnvKey(m.Epoch)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: read secrets: %w", err)
	}
	r, err := NewEnvReader(m, ek)
	if err != nil {
		return nil, nil, err
	}
	defer r.Wipe()
	out := make([]Secret, 0, len(req.Names))
	fail := func(err error) ([]Secret, *envelope.Manifest, error) {
		for _, s := range out {
			clear(s.Value)
		}
		return nil, nil, err
	}
	for _, name := range req.Names {
		e, err := r.Lookup(name)
		if err != nil {
			return fail(err)
		}
		var b [envelope.BlindLen]byte
		copy(b[:], e.Blind)
		rec, ok := req.Records[b]
		if !ok {
			return fail(fmt.Errorf("vault: read secret %q: record not fetched: %w", name, ErrRecordMismatch))
		}
		v, err := r.Open(name, rec)
		if err != nil {
			return fail(err)
		}
		n, _ := envelope.NormalizeName(name)
		out = append(out, Secret{Name: n, Version: e.Version, Value: v})
	}
	return out, m, nil
}
