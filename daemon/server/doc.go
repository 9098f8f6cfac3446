// SPDX-License-Identifier: Apache-2.0

// Package server stores ciphertext. It never sees key material.
//
// It is the ov-server HTTP API of internal/api: accounts, device and machine authentication, apps,
// environments, signed-manifest commits with a compare-and-swap on the sequence, machine wraps, the
// audit log, rate limits, /healthz, /readyz and Prometheus /metrics, over TCP (TLS, or plain HTTP
// on loopback only), a unix socket, or sockets handed over by systemd. Storage is a [store.Store].
//
// What the server checks, it checks without keys: lengths and headers of wrapped keys and records,
// manifests parsed with internal/envelope and matched against the stored records, and Ed25519
// signatures of manifests and grants against the account's public signing key. It must never
// import internal/vault (the decryption code); internal/testutil/layering_test.go fails the build if it does.
//
// [Main] is the whole program; cmd/ov-server only wires it to the process.
package server
