// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestWriteQuoting(t *testing.T) {
	for _, tc := range []struct {
		value, dotenv, systemd string
	}{
		{"", `A=`, `A=`},
		{"plain-value_1.2/3:4@5%6+7,8=9", `A=plain-value_1.2/3:4@5%6+7,8=9`, `A=plain-value_1.2/3:4@5%6+7,8=9`},
		{"two words", `A='two words'`, `A="two words"`},
		{" padded ", `A=' padded '`, `A=" padded "`},
		{"$HOME ${X} $(id) `id`", "A='$HOME ${X} $(id) `id`'", "A=\"\\$HOME \\${X} \\$(id) \\`id\\`\""},
		{"a#b # c", `A='a#b # c'`, `A="a#b # c"`},
		{`say "hi"`, `A='say "hi"'`, `A="say \"hi\""`},
		{`C:\dir\x`, `A='C:\dir\x'`, `A="C:\\dir\\x"`},
		{`ends with \`, `A="ends with \\"`, `A="ends with \\"`},
		{"it's", `A="it's"`, `A="it's"`},
		{"it's $HOME $ 5$", `A="it's \$HOME $ 5$"`, `A="it's \$HOME \$ 5\$"`},
		{"line 1\nline 2\n", `A="line 1\nline 2\n"`, "A=\"line 1\nline 2\n\""},
		{"cr\rlf\r\n", `A="cr\rlf\r\n"`, "A=\"cr\rlf\r\n\""},
		{"tab\there", "A='tab\there'", "A=\"tab\there\""},
		{"ünïcödé 😀", `A='ünïcödé 😀'`, `A="ünïcödé 😀"`},
		{"#", `A='#'`, `A="#"`},
		{"`tick`", "A='`tick`'", "A=\"\\`tick\\`\""},
	} {
		for _, f := range []struct {
			format Format
			want   string
		}{{Dotenv, tc.dotenv}, {Systemd, tc.systemd}} {
			var buf bytes.Buffer
			if err := Write(&buf, []Entry{{Name: "A", Value: []byte(tc.value)}}, f.format); err != nil {
				t.Fatalf("Write(%q, %s): %v", tc.value, f.format, err)
			}
			if got := strings.TrimSuffix(buf.String(), "\n"); got != f.want {
				t.Errorf("Write(%q, %s) = %s, want %s", tc.value, f.format, got, f.want)
			}
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	entries := []Entry{{Name: "Z", Value: []byte("1")}, {Name: "A", Value: []byte("q\"\\\n\t\x01<>&é")}, {Name: "a.b", Value: nil}}
	if err := Write(&buf, entries, JSON); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"Z\": \"1\",\n  \"A\": \"q\\\"\\\\\\n\\t\\u0001<>&é\",\n  \"a.b\": \"\"\n}\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
	buf.Reset()
	if err := Write(&buf, nil, JSON); err != nil || buf.String() != "{}\n" {
		t.Errorf("empty: %q %v", buf.String(), err)
	}
}

func TestWriteDocker(t *testing.T) {
	var buf bytes.Buffer
	entries := []Entry{{Name: "A", Value: []byte(` x "y" # z `)}, {Name: "B", Value: []byte("mid\rcr")}, {Name: "C", Value: nil}}
	if err := Write(&buf, entries, Docker); err != nil {
		t.Fatal(err)
	}
	if want := "A= x \"y\" # z \nB=mid\rcr\nC=\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestWriteRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		e      []Entry
		is     error
		msg    string
	}{
		{
			"newline in docker", Docker,
			[]Entry{{Name: "K", Value: []byte("a\n" + secretMarker)}},
			ErrUnrepresentable,
			`write "K" as docker: value cannot be represented: docker env-files cannot hold a line break`,
		},
		{"trailing CR in docker", Docker, []Entry{{Name: "K", Value: []byte(secretMarker + "\r")}}, ErrUnrepresentable, "carriage return"},
		{"long docker line", Docker, []Entry{{Name: "K", Value: bytes.Repeat([]byte("x"), 70000)}}, ErrUnrepresentable, "64 KiB"},
		{"NUL", Dotenv, []Entry{{Name: "K", Value: []byte(secretMarker + "\x00")}}, ErrUnrepresentable, "NUL byte"},
		{"invalid UTF-8", JSON, []Entry{{Name: "K", Value: []byte(secretMarker + "\xff")}}, ErrUnrepresentable, "not valid UTF-8"},
		{"invalid name", Dotenv, []Entry{{Name: ".K", Value: []byte(secretMarker)}}, ErrInvalidName, `write ".K" as dotenv: invalid name`},
		{"leading digit in systemd", Systemd, []Entry{{Name: "1K", Value: []byte(secretMarker)}}, ErrInvalidName, `write "1K" as systemd: invalid name`},
		{"empty name", JSON, []Entry{{Name: "", Value: nil}}, ErrInvalidName, "invalid name"},
		{"dots in systemd", Systemd, []Entry{{Name: "a.b", Value: []byte(secretMarker)}}, ErrInvalidName, "systemd drops"},
		{"duplicate", Dotenv, []Entry{{Name: "K", Value: []byte("1")}, {Name: "K", Value: []byte(secretMarker)}}, ErrInvalidName, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			entries := append([]Entry{{Name: "OK", Value: []byte("fine")}}, tc.e...)
			err := Write(&buf, entries, tc.format)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.is, tc.msg)
			}
			if strings.Contains(err.Error(), secretMarker) {
				t.Errorf("error leaks the value: %v", err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q before failing", buf.String())
			}
		})
	}
	if err := Write(&bytes.Buffer{}, nil, Format(42)); err == nil {
		t.Error("unknown format: want an error")
	}
}

// nasty is what generated values are made of: every character some reader
// treats specially, and some that only look harmless.
var nasty = []string{
	"'", `"`, `\`, "$", "{", "}", "(", ")", "#", " ", "\t", "\n", "\r", "\r\n", "=", ":", "`", "!", ";", "*", "~",
	"é", "😀", "\u00a0", "\v", "\f", "\x01", "\x7f", "\u2028", "\ufeff", "a", "Z", "0", "_", "-", ".", "/",
	"export ", "---", "${A}", "$A", "\\n", "\\$", "\\'", "\\\"", " #", "# ", "$(id)",
}

func randomValue(r *rand.Rand) []byte {
	var b []byte
	for n := r.IntN(12); n > 0; n-- {
		b = append(b, nasty[r.IntN(len(nasty))]...)
	}
	if b == nil && r.IntN(2) == 0 {
		return nil
	}
	return b
}

func randomName(r *rand.Rand, extended bool) string {
	const first = "ABCXYZabcxyz_"
	const rest = "ABCXYZabcxyz_0189"
	b := []byte{first[r.IntN(len(first))]}
	for n := r.IntN(8); n > 0; n-- {
		c := rest[r.IntN(len(rest))]
		if extended && r.IntN(6) == 0 {
			c = ".-"[r.IntN(2)]
		}
		b = append(b, c)
	}
	return string(b)
}

func randomEntries(r *rand.Rand, extended bool) []Entry {
	seen := map[string]bool{}
	var es []Entry
	for n := 1 + r.IntN(6); n > 0; n-- {
		name := randomName(r, extended)
		if seen[name] {
			continue
		}
		seen[name] = true
		es = append(es, Entry{Name: name, Value: randomValue(r)})
	}
	return es
}

// TestRoundTripProperty checks parse(write(x)) == x for generated entries
// in every format (docker where it can hold the values).
func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		for _, f := range []Format{Dotenv, Systemd, Docker, JSON} {
			entries := randomEntries(r, f != Systemd)
			roundTrip(t, entries, f, f == Docker)
		}
	}
}

// roundTrip writes entries in f and parses them back. With mayRefuse, an
// ErrUnrepresentable from Write is accepted.
func roundTrip(t *testing.T, entries []Entry, f Format, mayRefuse bool) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, entries, f); err != nil {
		if mayRefuse && errors.Is(err, ErrUnrepresentable) {
			return
		}
		t.Fatalf("Write(%s, %s): %v", dumpEntries(entries), f, err)
	}
	written := buf.String()
	res, err := Parse(&buf, Options{Format: f})
	if err != nil {
		t.Fatalf("Parse(%s) of %q (from %s): %v", f, written, dumpEntries(entries), err)
	}
	if got, want := dumpEntries(res.Entries), dumpEntries(entries); got != want {
		t.Fatalf("round trip through %s:\nwrote %q\n  got %s\n want %s", f, written, got, want)
	}
}
