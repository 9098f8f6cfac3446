// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

func addSeeds(f *testing.F, add func(data []byte)) {
	files, _ := filepath.Glob("testdata/*/*.*")
	for _, name := range files {
		if filepath.Ext(name) == ".golden" {
			continue
		}
		if data, err := os.ReadFile(name); err == nil {
			add(data)
		}
	}
	for _, s := range []string{
		"A=1", "export A='x'", "A=\"a\\nb\" # c", "A=b#c", "A= #c", "A='it\\'s'", "A=${B:-${C}}", "A=$(id)",
		"A=\"x\r\ny\"\r\n", "A\nB=", "{\"A\":\"b\"}", "a=b\\\nc", "A=\"unterminated", "\ufeffA=1", "OPTION_A: 1",
	} {
		add([]byte(s))
	}
}

// FuzzParse checks that Parse never panics, that what it accepts is
// well-formed, and that writing the result and parsing it again gives the
// same entries, in the same format and in dotenv and JSON.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(data []byte) {
		for format := range 4 {
			f.Add(data, uint8(format), format == 0)
		}
	})
	env := envMap(map[string]string{"HOME": "/root", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte, format uint8, expand bool) {
		opt := Options{Format: Format(format % 4), Env: env}
		opt.Expand = expand && opt.Format == Dotenv
		res, err := Parse(bytes.NewReader(data), opt)
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty ErrorList", err, err)
			}
			for _, e := range l {
				if e.Line < 1 || e.Column < 1 {
					t.Fatalf("error without a position: %v", e)
				}
			}
			return
		}
		names := map[string]bool{}
		for _, e := range res.Entries {
			if names[e.Name] {
				t.Fatalf("name %q twice in the result", e.Name)
			}
			names[e.Name] = true
			if classifyName(e.Name) == nameInvalid {
				t.Fatalf("invalid name %q accepted", e.Name)
			}
			if bytes.IndexByte(e.Value, 0) >= 0 || !utf8.Valid(e.Value) {
				t.Fatalf("value of %q has NUL or invalid UTF-8", e.Name)
			}
			if e.Line < 1 || e.Column < 1 {
				t.Fatalf("entry %q without a position", e.Name)
			}
		}
		for _, w := range res.Warnings {
			if w.Line < 1 || w.Column < 1 || w.Code == "" {
				t.Fatalf("bad warning %+v", w)
			}
		}
		for _, out := range []Format{opt.Format, Dotenv, JSON} {
			roundTrip(t, res.Entries, out, out == Docker)
		}
	})
}

// FuzzRoundTrip checks parse(write(x)) == x for arbitrary values in every
// format, and that Write refuses exactly the values a format cannot hold.
func FuzzRoundTrip(f *testing.F) {
	for _, v := range nasty {
		f.Add([]byte(v), []byte("x"+v+"y"), "NAME")
	}
	f.Add([]byte("a\nb"), []byte(" lead and trail "), "a.b")
	f.Add([]byte("\x00"), []byte("\xff"), "A")
	f.Fuzz(func(t *testing.T, v1, v2 []byte, name string) {
		if classifyName(name) == nameInvalid || name == "FIRST" {
			name = "SECOND"
		}
		entries := []Entry{{Name: "FIRST", Value: v1}, {Name: name, Value: v2}}
		clean := func(v []byte) bool { return utf8.Valid(v) && bytes.IndexByte(v, 0) < 0 }
		for _, format := range []Format{Dotenv, Systemd, Docker, JSON} {
			err := Write(&bytes.Buffer{}, entries, format)
			badName := format == Systemd && classifyName(name) == nameExtended
			badValue := !clean(v1) || !clean(v2)
			switch {
			case badName || badValue:
				// Entries are checked in order, so either problem may be the one reported.
				if !(badName && errors.Is(err, ErrInvalidName)) && !(badValue && errors.Is(err, ErrUnrepresentable)) {
					t.Fatalf("%s: name %q, clean values %v: got %v", format, name, !badValue, err)
				}
				continue
			}
			roundTrip(t, entries, format, format == Docker)
		}
	})
}
