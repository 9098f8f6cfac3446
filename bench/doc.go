// SPDX-License-Identifier: Apache-2.0

// Package bench holds whole-command benchmarks: the real ov binary against a real ov-server on
// loopback, each reported as a ratio to a baseline (/usr/bin/env true) measured in the same run.
//
//	go test -run '^$' -bench . ./bench/
//
// The ov used here is the test binary run under the name "ov", with cheap Argon2id parameters
// (production unlocks cost ~2 s of Argon2id by design; see internal/vault's
// BenchmarkArgon2idProduction), so that the figures show what the rest of a command costs.
package bench
