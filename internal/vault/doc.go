// SPDX-License-Identifier: Apache-2.0

// Package vault is OpaqueVault's key hierarchy (crypto.md §1–§2): the
// Argon2id + Account Secret Key two-secret KDF ([DerivePasswordKeys]), the
// key check, the account key and its wraps, the Ed25519 account signing key,
// environment keys, secret records ([EnvCipher]), signed manifests with
// rollback floors ([VerifyManifest], [ReadSecrets]), and scoped machine keys
// with signed grants and authenticated pins ([MachineKey]). Byte formats come
// from internal/envelope; every output is proven against the known-answer
// vectors in testdata/vectors.json.
//
// It runs only on clients, agents and machines. The server must never import
// it (the server stores ciphertext and never sees key material), and nothing
// here may print, log, marshal or put into an error any key, password,
// plaintext or bearer token: key material lives in [Key] values, which print as
// "[redacted]", refuse every marshaller and compare only in constant time.
//
// # Randomness and determinism
//
// Every nonce, ephemeral key and fresh key comes from crypto/rand. The
// deterministic variants that take a nonce or ephemeral key exist only as
// unexported functions for the known-answer tests.
//
// # Memory
//
// Wiping is best effort: Key.Wipe clears the only copy this package keeps, but
// Go's AEAD, HKDF, Argon2 and ed25519 implementations keep their own heap
// copies that cannot be reached (crypto.md §3.2). Callers wipe keys they no
// longer need and keep key lifetimes short.
package vault
