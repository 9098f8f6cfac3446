// SPDX-License-Identifier: Apache-2.0

package vault

import "errors"

// Sentinel errors. Functions wrap them with "vault: verb object: ..." context
// and document which ones they may return; test with errors.Is. No error from
// this package contains key material, passwords, tokens or plaintext.
var (
	// ErrWrongPassword means the key check derived from the password and
	// Account Secret Key does not match the stored one.
	ErrWrongPassword = errors.New("wrong password or Account Secret Key")
	// ErrAuth means authenticated decryption failed: wrong key, wrong context
	// (AAD), or a modified blob.
	ErrAuth = errors.New("decryption failed")
	// ErrRollback means a manifest's seq is below the high-water mark or the
	// grant's seq_min: the server served an older state.
	ErrRollback = errors.New("rollback")
	// ErrBadSignature means an Ed25519 signature did not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrKDFParams means Argon2id parameters are outside the allowed bounds.
	ErrKDFParams = errors.New("KDF parameters out of bounds")
	// ErrKeyLength means key bytes were not exactly 32 bytes long.
	ErrKeyLength = errors.New("wrong key length")
	// ErrBadKeyFile means a machine key file is not exactly 32 usable bytes.
	ErrBadKeyFile = errors.New("invalid machine key file")
	// ErrBadPin means the pin MAC does not authenticate the account signing
	// public key for this machine key.
	ErrBadPin = errors.New("pin does not authenticate the account signing key")
	// ErrGrantMismatch means a grant names another account, machine id or
	// machine public key.
	ErrGrantMismatch = errors.New("grant is for another account or machine")
	// ErrGrantNotYetValid means now is before the grant's not_before.
	ErrGrantNotYetValid = errors.New("grant not yet valid")
	// ErrGrantExpired means now is at or after the grant's not_after.
	ErrGrantExpired = errors.New("grant expired")
	// ErrNotGranted means the grant has no scope with the requested app and
	// env names.
	ErrNotGranted = errors.New("scope not granted to this machine key")
	// ErrWrongEnv means a manifest is for another account, app or env than
	// the one requested.
	ErrWrongEnv = errors.New("manifest is for another environment")
	// ErrEKMismatch means the environment key does not match the ek_id the
	// signed manifest commits to.
	ErrEKMismatch = errors.New("environment key does not match manifest")
	// ErrNotInManifest means a requested secret name has no manifest entry.
	ErrNotInManifest = errors.New("secret not in manifest")
	// ErrRecordMismatch means a record does not match its manifest entry
	// (hash, version or blind id) or embeds another name than its AAD.
	ErrRecordMismatch = errors.New("record does not match manifest")
	// ErrWrongAccount means a signed revocation list or allowed set is for
	// another account, environment or epoch than the one asked for.
	ErrWrongAccount = errors.New("signed statement is for another account, environment or epoch")
	// ErrNotAllowed means a machine key is not in the signed allowed set of
	// an epoch (it was revoked, its grant expired, or it was never granted),
	// or is listed there under another grant.
	ErrNotAllowed = errors.New("machine key is not in the signed allowed set of this epoch")
	// ErrBadCacheMAC means a cache entry's MAC does not verify under the
	// machine key: the file was altered or written without the key.
	// ErrBrokenHistory means a served manifest history has a gap, is out of
	// order, or a chained manifest does not name its predecessor's hash.
	ErrBrokenHistory = errors.New("manifest history is broken")
	ErrBadCacheMAC   = errors.New("cache entry is not authenticated by this machine key")
)
