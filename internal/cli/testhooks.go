// SPDX-License-Identifier: Apache-2.0

package cli

import "github.com/opaquevault/opaquevault/internal/vault"

// UseTestKDF makes new passwords use cheap Argon2id parameters. It calls vault.UseTestKDF, which
// panics outside a test binary, so production code cannot reach weak parameters through it.
func UseTestKDF() {
	vault.UseTestKDF()
	newKDFParams = func() vault.KDFParams {
		p := vault.NewKDFParams()
		p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
		return p
	}
}
