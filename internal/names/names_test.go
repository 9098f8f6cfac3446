// SPDX-License-Identifier: Apache-2.0

package names

import (
	"errors"
	"strings"
	"testing"
)

func TestScope(t *testing.T) {
	cjk60 := strings.Repeat("設", 60) // 180 bytes: the CLI used to count runes and let it through
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"myapp", true}, {"prod-eu.1_a", true}, {"Größe", true}, {"9lives", true}, {"設定", true},
		{strings.Repeat("a", MaxScope), true}, {strings.Repeat("é", MaxScope/2), true},
		{"", false}, {strings.Repeat("a", MaxScope+1), false}, {cjk60, false},
		{"-x", false}, {".x", false}, {"_x", false}, {"a b", false}, {"a/b", false}, {"a\nb", false},
		{"e\u0301", false}, // not NFC
		{"\xff", false},
	} {
		err := Scope("app", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Scope(%q) = %v; want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("Scope(%q) = %v; does not match ErrBadName", tc.in, err)
		}
	}
	if n, err := NormalizeScope("env", "e\u0301"); err != nil || n != "é" {
		t.Errorf("NormalizeScope(decomposed é) = %q, %v", n, err)
	}
}

func TestSecret(t *testing.T) {
	for _, tc := range []struct {
		in           string
		valid, posix bool
	}{
		{"DATABASE_URL", true, true}, {"_x", true, true}, {"a1", true, true},
		{"1PASSWORD", true, false}, {"spring.datasource.url", true, false}, {"my-key", true, false},
		{strings.Repeat("A", MaxSecret), true, true},
		{"", false, false}, {".x", false, false}, {"-x", false, false}, {"A B", false, false},
		{"A=B", false, false}, {"Ä", false, false}, {strings.Repeat("A", MaxSecret+1), false, true},
	} {
		if got := ValidSecret(tc.in); got != tc.valid {
			t.Errorf("ValidSecret(%q) = %v; want %v", tc.in, got, tc.valid)
		}
		if got := Portable(tc.in); got != tc.posix {
			t.Errorf("Portable(%q) = %v; want %v", tc.in, got, tc.posix)
		}
		err := Secret(tc.in)
		if (err == nil) != tc.valid {
			t.Errorf("Secret(%q) = %v", tc.in, err)
		}
		if err != nil && (strings.Contains(err.Error(), tc.in) && tc.in != "") {
			t.Errorf("Secret(%q) error repeats the input: %v", tc.in, err)
		}
	}
}
