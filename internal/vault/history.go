// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// labelValueFP derives the key of value fingerprints (docs/history-and-audit.md).
const labelValueFP = "ov/v1/value-fp"

// FingerprintLen is the length in bytes of a value fingerprint (shown as 16 hex digits).
const FingerprintLen = 8

// ChainPrev returns the prev hash a chained manifest of seq prevSeq+1 carries:
// SHA-256(prevRaw), or 32 zero bytes when there is no predecessor (prevSeq 0).
func ChainPrev(prevRaw []byte, prevSeq uint64) []byte {
	if prevSeq == 0 {
		return make([]byte, sha256.Size)
	}
	h := sha256.Sum256(prevRaw)
	return h[:]
}

// ChainLink is one manifest of a served history, as served.
type ChainLink struct {
	Raw []byte
	Sig []byte
}

// VerifyHistory verifies a manifest history, oldest first, as a reader that
// trusts only c: every signature, environment and parse as [VerifyManifest]
// (without the high-water floor, which applies to the newest only); seqs
// strictly consecutive; the first either seq 1 or an unchained manifest (a
// history kept from before chaining starts where it was kept); a chained
// manifest's prev equal to the SHA-256 of its predecessor's raw bytes (or
// zero for seq 1); no unchained manifest after a chained one; and the newest
// at or above c.HighWater. So a server that drops, reorders, replaces or
// forges a past manifest, or cuts the newest off, is detected. Errors wrap
// [ErrBadSignature], [ErrWrongEnv], [ErrBrokenHistory], [ErrRollback] or
// envelope's parse errors.
func VerifyHistory(links []ChainLink, c ManifestCheck) ([]*envelope.Manifest, error) {
	if len(links) == 0 {
		if c.HighWater > 0 {
			return nil, fmt.Errorf("vault: verify history: empty, but seq %d was seen: %w", c.HighWater, ErrRollback)
		}
		return nil, nil
	}
	chk := c
	chk.HighWater = 0
	out := make([]*envelope.Manifest, 0, len(links))
	for i, l := range links {
		m, err := VerifyManifest(l.Raw, l.Sig, chk)
		if err != nil {
			return nil, fmt.Errorf("vault: verify history: entry %d: %w", i, err)
		}
		if i == 0 {
			if m.Seq != 1 && m.Chained() {
				return nil, fmt.Errorf("vault: verify history: starts at chained seq %d without its predecessor: %w", m.Seq, ErrBrokenHistory)
			}
			if m.Seq == 1 && m.Chained() && !bytes.Equal(m.Prev, ChainPrev(nil, 0)) {
				return nil, fmt.Errorf("vault: verify history: seq 1 names a predecessor: %w", ErrBrokenHistory)
			}
		} else {
			prev := out[i-1]
			if m.Seq != prev.Seq+1 {
				return nil, fmt.Errorf("vault: verify history: seq %d follows seq %d: %w", m.Seq, prev.Seq, ErrBrokenHistory)
			}
			if prev.Chained() && !m.Chained() {
				return nil, fmt.Errorf("vault: verify history: unchained seq %d after a chained one: %w", m.Seq, ErrBrokenHistory)
			}
			if m.Chained() && !bytes.Equal(m.Prev, ChainPrev(links[i-1].Raw, prev.Seq)) {
				return nil, fmt.Errorf("vault: verify history: seq %d does not name seq %d as served: %w", m.Seq, prev.Seq, ErrBrokenHistory)
			}
		}
		out = append(out, m)
	}
	if err := CheckHighWater(out[len(out)-1], c.HighWater); err != nil {
		return nil, err
	}
	return out, nil
}

// Fingerprint returns the fingerprint of a secret's value: the first
// [FingerprintLen] bytes of HMAC-SHA256(fp_key, lp(NFC(name)) ‖ value) in hex,
// with fp_key = derive(EK, "ov/v1/value-fp", ctx). Without EK nobody (the
// server, a log reader) can test a guess against it; it tells whether two
// versions of one secret under one epoch hold the same value. Errors wrap
// envelope.ErrBadName or envelope.ErrMalformed.
func Fingerprint(ek *EnvKey, s Scope, name string, value []byte) (string, error) {
	if err := s.checkIDs(); err != nil {
		return "", fmt.Errorf("vault: fingerprint: %w", err)
	}
	n, err := envelope.NormalizeName(name)
	if err != nil {
		return "", fmt.Errorf("vault: fingerprint: %w", err)
	}
	k := derive(&ek.Key, labelValueFP, s.ctx())
	defer k.Wipe()
	h := hmac.New(sha256.New, k.arr()[:])
	h.Write(envelope.AppendLPString(nil, n))
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil)[:FingerprintLen]), nil
}
