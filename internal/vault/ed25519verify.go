// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"

	"filippo.io/edwards25519"
)

// ed25519Verify is crypto/ed25519.Verify (RFC 8032 Ed25519, cofactorless, S < L required, the same
// point decoding: filippo.io/edwards25519 is the code Go's own copy comes from), step for step,
// except for the last one: it computes R' = [S]B - [k]A with a multi-scalar multiplication
// instead of crypto/ed25519's VarTimeDoubleScalarBaseMult. The latter first builds a table of 64
// multiples of B (64 field inversions, ~0.3 ms), once per process: `ov run` verifies three
// signatures per start, and the table cost more than the three together. The result is the same
// point, so the same answer; TestEd25519VerifyMatchesStdlib checks it against crypto/ed25519 on
// valid, altered and malformed signatures.
func ed25519Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		return false
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	minusA := new(edwards25519.Point).Negate(A)
	R := new(edwards25519.Point).VarTimeMultiScalarMult([]*edwards25519.Scalar{k, S}, []*edwards25519.Point{minusA, edwards25519.NewGeneratorPoint()})
	return subtle.ConstantTimeCompare(R.Bytes(), sig[:32]) == 1
}
