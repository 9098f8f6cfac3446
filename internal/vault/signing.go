// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// SigningKey is the seed of the Ed25519 account signing key (crypto.md §1.3).
// It signs manifests and machine grants. It is stored only wrapped under the
// account key; its public key is pinned in the config and, for machines, by
// an authenticated pin (§2.6).
type SigningKey struct{ Key }

// NewSigningKey returns a fresh random signing key.
func NewSigningKey() *SigningKey { return &SigningKey{randomKey()} }

// Public returns the Ed25519 public key.
func (sk *SigningKey) Public() ed25519.PublicKey {
	priv := ed25519.NewKeyFromSeed(sk.arr()[:])
	defer clear(priv)
	return ed25519.PublicKey(append([]byte(nil), priv[ed25519.SeedSize:]...))
}

func (sk *SigningKey) sign(msg []byte) []byte {
	priv := ed25519.NewKeyFromSeed(sk.arr()[:])
	defer clear(priv)
	return ed25519.Sign(priv, msg)
}

// signingKeyAAD is the AAD of the signing-key wrap. crypto.md §1.3 says "same
// construction as the account-key wrap" and has no vector for it; the AAD
// chosen here is that construction minus the KDF parameters, which belong to
// the KEK and not to AK:
//
//	hdr ‖ lp("ov/v1/wrap/signing-key") ‖ lp(aid) ‖ u32(ak_version)
//
// ak_version names the account key the seed is wrapped under, so a wrap made
// under an earlier AK cannot be presented as current.
func signingKeyAAD(accountID []byte, akVersion uint32) []byte {
	b := aadPrefix(labelWrapSigningKey, 2+len(accountID)+4)
	b = envelope.AppendLP(b, accountID)
	return envelope.AppendU32(b, akVersion)
}

// WrapSigningKey seals sk under ak with a fresh nonce (74 bytes; AAD as
// documented on signingKeyAAD in the source). Errors wrap
// envelope.ErrMalformed for an account id that is not 16 bytes.
func (ak *AccountKey) WrapSigningKey(sk *SigningKey, accountID []byte, akVersion uint32) ([]byte, error) {
	if err := checkID("account id", accountID); err != nil {
		return nil, fmt.Errorf("vault: wrap signing key: %w", err)
	}
	return sealKey(&ak.Key, newNonce(), &sk.Key, signingKeyAAD(accountID, akVersion)), nil
}

// UnwrapSigningKey opens a wrap made by [AccountKey.WrapSigningKey]. The
// caller compares the result's [SigningKey.Public] with its pinned public
// key. Errors wrap [ErrAuth], envelope.ErrBadLength or envelope.ErrBadHeader.
func (ak *AccountKey) UnwrapSigningKey(wrapped, accountID []byte, akVersion uint32) (*SigningKey, error) {
	k, err := openKey(&ak.Key, wrapped, signingKeyAAD(accountID, akVersion))
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap signing key: %w", err)
	}
	return &SigningKey{k}, nil
}

// SignManifest validates m, encodes it (entries sorted by blind id) and signs
// the encoding. It returns the bytes to upload and the 64-byte signature.
// Errors wrap envelope.ErrMalformed.
func (sk *SigningKey) SignManifest(m *envelope.Manifest) (raw, sig []byte, err error) {
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("vault: sign manifest: %w", err)
	}
	raw = m.Marshal()
	return raw, sk.sign(raw), nil
}

// SignGrant validates g, encodes it and signs the encoding. Errors wrap
// envelope.ErrMalformed or envelope.ErrBadName.
func (sk *SigningKey) SignGrant(g *envelope.Grant) (raw, sig []byte, err error) {
	if err := g.Validate(); err != nil {
		return nil, nil, fmt.Errorf("vault: sign grant: %w", err)
	}
	raw = g.Marshal()
	return raw, sk.sign(raw), nil
}

func verifySig(what string, pub ed25519.PublicKey, raw, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("vault: verify %s: public key is %d bytes: %w", what, len(pub), ErrBadSignature)
	}
	if !ed25519Verify(pub, raw, sig) {
		return fmt.Errorf("vault: verify %s: %w", what, ErrBadSignature)
	}
	return nil
}

// VerifyGrant verifies sig over raw with the pinned account signing key,
// parses the grant strictly and checks not_before ≤ now < not_after (not_after
// 0 never expires). It does not check which machine the grant is for; a
// machine uses [MachineKey.VerifyGrant]. Errors wrap [ErrBadSignature],
// [ErrGrantNotYetValid], [ErrGrantExpired] or envelope's parse errors.
func VerifyGrant(pub ed25519.PublicKey, raw, sig []byte, now time.Time) (*envelope.Grant, error) {
	return verifyGrant(pub, raw, sig, now, false)
}

// verifyGrant is VerifyGrant; with cached, raw is known to be a grant verified before (see
// [ManifestCheck.Cached]) and its signature is not verified again.
func verifyGrant(pub ed25519.PublicKey, raw, sig []byte, now time.Time, cached bool) (*envelope.Grant, error) {
	if !cached {
		if err := verifySig("grant", pub, raw, sig); err != nil {
			return nil, err
		}
	}
	g, err := envelope.ParseGrant(raw)
	if err != nil {
		return nil, fmt.Errorf("vault: verify grant: %w", err)
	}
	t := now.Unix()
	if t < 0 || uint64(t) < g.NotBefore {
		return nil, fmt.Errorf("vault: verify grant: not before %s: %w", time.Unix(int64(g.NotBefore), 0).UTC().Format(time.RFC3339), ErrGrantNotYetValid)
	}
	if g.NotAfter != 0 && uint64(t) >= g.NotAfter {
		return nil, fmt.Errorf("vault: verify grant: expired at %s: %w", time.Unix(int64(g.NotAfter), 0).UTC().Format(time.RFC3339), ErrGrantExpired)
	}
	return g, nil
}

// LookupScope returns the scope of g named (appName, envName), by NFC name
// (crypto.md §2.2: the server cannot re-map names to other ids). Errors wrap
// [ErrNotGranted].
func LookupScope(g *envelope.Grant, appName, envName string) (envelope.GrantScope, error) {
	s, ok := g.Scope(appName, envName)
	if !ok {
		return envelope.GrantScope{}, fmt.Errorf("vault: look up %q/%q: %w", appName, envName, ErrNotGranted)
	}
	return s, nil
}
