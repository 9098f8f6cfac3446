// SPDX-License-Identifier: Apache-2.0

package childenv

import (
	"slices"
	"testing"
)

func TestBuild(t *testing.T) {
	got := Build([]string{"PATH=/bin", "TOKEN=inherited", "BROKEN", "HOME=/h", "EMPTY="},
		map[string]string{"TOKEN": "secret", "B": "b=c", "A": ""})
	want := []string{"PATH=/bin", "HOME=/h", "EMPTY=", "A=", "B=b=c", "TOKEN=secret"}
	if !slices.Equal(got, want) {
		t.Errorf("Build = %q, want %q", got, want)
	}
	if got := Build(nil, nil); len(got) != 0 {
		t.Errorf("Build(nil, nil) = %q", got)
	}
}
