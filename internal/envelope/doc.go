// SPDX-License-Identifier: Apache-2.0

// Package envelope defines the OpaqueVault v1 byte formats of crypto.md: the
// length-prefixed encoding ([AppendLP], [Reader]), signed manifests
// ([Manifest]), machine grants ([Grant]), the length rules of wrapped keys and
// secret records ([CheckWrappedKey], [CheckRecord], [CheckMachineWrap]), and
// the bearer tokens and verifiers the server checks ([ParseAPIToken],
// [APIKeyVerifier], [LoginVerifier], [MachineVerifier]).
//
// The server imports this package. It therefore holds no keys and must never
// decrypt, unwrap or sign anything, and it must never import internal/vault;
// the SHA-256 verifiers here are one-way hashes of bearer credentials, not
// decryption. Everything in it is pure, allocation-bounded and fuzzed.
//
// # Strictness
//
// Every decoder accepts exactly one encoding of a value: fixed-length fields
// must have their exact length, lists must be in canonical order, names must be
// NFC, and trailing bytes are an error. Marshal of a parsed value therefore
// reproduces its input byte for byte.
package envelope
