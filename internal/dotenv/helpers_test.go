// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// secretMarker appears in test inputs wherever a value could leak into a
// message; no error or warning may ever contain it.
const secretMarker = "s3cr3t"

// kv builds the expected entries from name, value pairs.
func kv(pairs ...string) []Entry {
	if len(pairs)%2 != 0 {
		panic("kv: odd number of arguments")
	}
	out := []Entry{}
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Entry{Name: pairs[i], Value: []byte(pairs[i+1])})
	}
	return out
}

// parseCase is one table test. want == nil means the input must be refused,
// and err must then be a substring of the first error ("line:col: msg" when
// the file name is empty).
type parseCase struct {
	name  string
	in    string
	opt   Options
	want  []Entry
	warns []string // expected warning codes, in order; nil means none
	err   string
	// anyWarns skips the warning check.
	anyWarns bool
}

func runParseCases(t *testing.T, format Format, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			opt.Format = format
			res, err := Parse(strings.NewReader(tc.in), opt)
			checkNoLeak(t, tc.in, res, err)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("Parse(%q) = %s, want an error containing %q", tc.in, dumpEntries(res.Entries), tc.err)
				}
				var l ErrorList
				if !errors.As(err, &l) || len(l) == 0 {
					t.Fatalf("error %v (%T) is not a non-empty ErrorList", err, err)
				}
				if !strings.Contains(l[0].Error(), tc.err) {
					t.Fatalf("Parse(%q) error = %q, want it to contain %q", tc.in, err, tc.err)
				}
				if res != nil && len(res.Entries) > 0 {
					t.Fatalf("Parse returned entries with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): unexpected error: %v", tc.in, err)
			}
			if got, want := dumpEntries(res.Entries), dumpEntries(tc.want); got != want {
				t.Errorf("Parse(%q) entries\n got: %s\nwant: %s", tc.in, got, want)
			}
			if !tc.anyWarns {
				var codes []string
				for _, w := range res.Warnings {
					codes = append(codes, w.Code)
				}
				if strings.Join(codes, ",") != strings.Join(tc.warns, ",") {
					t.Errorf("Parse(%q) warnings = %v, want codes %v", tc.in, res.Warnings, tc.warns)
				}
			}
		})
	}
}

// checkNoLeak fails if a message contains the secret marker.
func checkNoLeak(t *testing.T, in string, res *Result, err error) {
	t.Helper()
	if !strings.Contains(in, secretMarker) {
		return
	}
	if err != nil && strings.Contains(err.Error(), secretMarker) {
		t.Errorf("error leaks a value: %v", err)
	}
	var l ErrorList
	if errors.As(err, &l) {
		for _, e := range l {
			if strings.Contains(e.Error(), secretMarker) {
				t.Errorf("error leaks a value: %v", e)
			}
		}
	}
	if res != nil {
		for _, w := range res.Warnings {
			if strings.Contains(w.String(), secretMarker) {
				t.Errorf("warning leaks a value: %v", w)
			}
		}
	}
}

func dumpEntries(es []Entry) string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%q", e.Name, e.Value)
	}
	return "[" + b.String() + "]"
}

// envMap is an Options.Env backed by a map.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}
