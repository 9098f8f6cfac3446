// SPDX-License-Identifier: Apache-2.0

//go:build linux

package polkittest

import (
	"os"
	"path/filepath"
	"testing"
)

// StartPolkitdRules is [Bus.StartPolkitd] with the given JavaScript rules files in place of
// /etc/polkit-1/rules.d (and no other rules), for tests of rules that ov writes.
func (b *Bus) StartPolkitdRules(t testing.TB, policies, rules map[string][]byte) {
	t.Helper()
	dir := filepath.Join(b.Dir, "rules.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range rules {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.startPolkitd(t, policies, "mount --bind "+dir+" /etc/polkit-1/rules.d && mount --bind "+dir+" /usr/share/polkit-1/rules.d && ")
}
