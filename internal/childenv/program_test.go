// SPDX-License-Identifier: Apache-2.0

package childenv

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestResolveProgram(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := write("tool", 0o755)
	write("plain", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)

	for _, tc := range []struct {
		argv0, dir string
		want       string // path, or the error's reason
		notFound   bool
		fails      bool
	}{
		{argv0: "tool", want: exe},
		{argv0: exe, want: exe},
		{argv0: "./tool", dir: dir, want: exe},
		{argv0: "sub/../tool", dir: dir, want: exe},
		{argv0: "nope", want: "program not found in PATH", notFound: true, fails: true},
		{argv0: "./nope", dir: dir, want: "no such file", notFound: true, fails: true},
		{argv0: "", want: "empty program name", notFound: true, fails: true},
		{argv0: filepath.Join(dir, "plain"), want: "not executable", fails: true},
		{argv0: filepath.Join(dir, "sub"), want: "is a directory", fails: true},
		{argv0: "plain", want: "program not found in PATH", notFound: true, fails: true}, // execvp skips it too
	} {
		got, err := ResolveProgram(tc.argv0, tc.dir)
		if !tc.fails {
			if err != nil || got != tc.want {
				t.Errorf("ResolveProgram(%q, %q) = %q, %v; want %q", tc.argv0, tc.dir, got, err, tc.want)
			}
			continue
		}
		var pe *ProgramError
		if !errors.As(err, &pe) {
			t.Errorf("ResolveProgram(%q, %q) = %q, %v; want a *ProgramError", tc.argv0, tc.dir, got, err)
			continue
		}
		if pe.NotFound != tc.notFound || !strings.Contains(pe.Error(), tc.want) {
			t.Errorf("ResolveProgram(%q, %q): %v (not found %v); want %q, not found %v", tc.argv0, tc.dir, err, pe.NotFound, tc.want, tc.notFound)
		}
	}
}

func TestSystemdOnlyAndCheckValues(t *testing.T) {
	got := SystemdOnly([]string{"HOME=/h", "NOTIFY_SOCKET=/run/n", "TOKEN=x", "LISTEN_FDS=1"})
	if want := []string{"NOTIFY_SOCKET=/run/n", "LISTEN_FDS=1"}; !slices.Equal(got, want) {
		t.Errorf("SystemdOnly = %q, want %q", got, want)
	}
	if err := CheckValues(map[string]string{"A": "ok", "B": ""}); err != nil {
		t.Error(err)
	}
	err := CheckValues(map[string]string{"Z": "a\x00secret-value", "A": "ok", "B": "\x00"})
	if err == nil || !strings.Contains(err.Error(), "B, Z") || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("CheckValues = %v; want B and Z named, no value", err)
	}
}
