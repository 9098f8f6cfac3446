// SPDX-License-Identifier: Apache-2.0

//go:build linux

package polkit

import "testing"

func TestParseStartTime(t *testing.T) {
	fields := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n"
	for _, tc := range []struct {
		name, stat string
		want       uint64
		ok         bool
	}{
		{"plain", "42 (sleep)" + fields, 424242, true},
		{"spaces and parens in comm", "42 (a) (b c) d)" + fields, 424242, true},
		{"no comm", "42 sleep" + fields, 0, false},
		{"short", "42 (x) S 1 2 3", 0, false},
		{"not a number", "42 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStartTime([]byte(tc.stat))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseStartTime = %d, %v; want %d, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}
