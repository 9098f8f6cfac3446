// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestSingleQuoteBackslashes: a quote closes a single-quoted value unless an
// odd number of backslashes precede it, as in godotenv (v1.6), compose-go
// and Node's and Ruby dotenv (whose quoted-value regex backtracks to the
// quote that ends the line).
func TestSingleQuoteBackslashes(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "two backslashes", in: `KEY='\\'` + "\nB=1", want: kv("KEY", `\\`, "B", "1"), warns: []string{WarnEscape}},
		{name: "four backslashes", in: `KEY='a\\\\'`, want: kv("KEY", `a\\\\`), warns: []string{WarnEscape}},
		{name: "escaped quote inside", in: `KEY='a\'b'`, want: kv("KEY", `a\'b`), warns: []string{WarnEscape}},
		{name: "three backslashes then quote", in: `KEY='\\\'x'`, want: kv("KEY", `\\\'x`), warns: []string{WarnEscape}},
		{name: "one backslash then quote", in: `KEY='\'`, err: "1:5: unterminated single-quoted value"},
	})
}

// TestRefusedFileWarnings: a refused file reports its warnings too, and its
// errors in line order.
func TestRefusedFileWarnings(t *testing.T) {
	in := "A.B=1\nC D=" + secretMarker + "\nE=\"x\" y\nF=$HOME\n\"bad\n"
	res, err := Parse(strings.NewReader(in), Options{Filename: "f.env"})
	checkNoLeak(t, in, res, err)
	var l ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	if res == nil || len(res.Entries) != 0 {
		t.Fatalf("a refused file gives a Result with warnings and no entries, got %+v", res)
	}
	var codes []string
	for _, w := range res.Warnings {
		codes = append(codes, w.String())
	}
	if len(codes) != 2 || !strings.HasPrefix(codes[0], "f.env:1:1: ") || !strings.HasPrefix(codes[1], "f.env:4:3: ") {
		t.Errorf("warnings of the refused file: %q", codes)
	}
	for i := 1; i < len(l); i++ {
		if l[i-1].Line > l[i].Line || l[i-1].Line == l[i].Line && l[i-1].Column > l[i].Column {
			t.Errorf("errors out of order: %v before %v", l[i-1], l[i])
		}
	}
	if len(l) != 3 {
		t.Errorf("want 3 errors, got %d: %v", len(l), l)
	}
}

// TestDollarColumn: the expansion and command warnings point at the "$".
func TestDollarColumn(t *testing.T) {
	for _, tc := range []struct{ in, code, at string }{
		{"A=abc$HOME", WarnExpansion, "1:6"},
		{`A="x y ${B}"`, WarnExpansion, "1:8"},
		{"A=pre $(id) $(id)", WarnCommand, "1:7"},
		{"A=x $1 $2", WarnExpansion, "1:5"},
	} {
		res, err := Parse(strings.NewReader(tc.in), Options{})
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		found := false
		for _, w := range res.Warnings {
			if w.Code == tc.code {
				found = true
				if got := w.String()[:strings.Index(w.String(), ": ")]; got != tc.at {
					t.Errorf("%q: %s warning at %s, want %s", tc.in, tc.code, got, tc.at)
				}
			}
		}
		if !found {
			t.Errorf("%q: no %s warning in %v", tc.in, tc.code, res.Warnings)
		}
	}
}

// TestUTF16WithoutBOM: UTF-16 without a byte order mark gets one error with
// the conversion hint, not one "NUL byte" error per character.
func TestUTF16WithoutBOM(t *testing.T) {
	text := "API_KEY=" + secretMarker + "\nNAME=café\n"
	units := utf16.Encode([]rune(text))
	le := make([]byte, 0, 2*len(units))
	be := make([]byte, 0, 2*len(units))
	for _, u := range units {
		le = append(le, byte(u), byte(u>>8))
		be = append(be, byte(u>>8), byte(u))
	}
	for enc, data := range map[string][]byte{"UTF-16LE": le, "UTF-16BE": be} {
		_, err := Parse(strings.NewReader(string(data)), Options{Filename: "w.env"})
		var l ErrorList
		if !errors.As(err, &l) || len(l) != 1 {
			t.Fatalf("%s: got %v, want one error", enc, err)
		}
		want := "w.env:1:1: the file looks like " + enc + " without a byte order mark; convert it to UTF-8 (iconv -f " + enc + " -t UTF-8)"
		if l[0].Error() != want {
			t.Errorf("%s: got %q, want %q", enc, l[0].Error(), want)
		}
	}
	// A UTF-8 file with a stray NUL is still reported at the byte.
	_, err := Parse(strings.NewReader("A=1\x00\nB=2\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "1:4: NUL byte") {
		t.Errorf("stray NUL: %v", err)
	}
}

// TestTrailingBackslash: an unquoted value ending in its only backslash reads the same in every
// peer, so it is not warned about (the writer produces it); other backslashes are.
func TestTrailingBackslash(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "one at the end", in: `A=C:dir\` + "\nB=\\", want: kv("A", `C:dir\`, "B", `\`)},
		{name: "two at the end", in: `A=a\\`, want: kv("A", `a\\`), warns: []string{WarnEscape}},
		{name: "inside", in: `A=a\b`, want: kv("A", `a\b`), warns: []string{WarnEscape}},
	})
}
