// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"errors"
	"strings"
	"testing"
)

// Expectations marked "sd:" are systemd's own (src/test/test-env-file.c and
// its Python twin), checked against load_env_file().
func TestSystemd(t *testing.T) {
	runParseCases(t, Systemd, []parseCase{
		{name: "basic", in: "A=1\nB=two words\n", want: kv("A", "1", "B", "two words")},
		{
			name:  "sd: continuation, escapes, duplicates",
			in:    "a=a\na=b\na=b\na=a\nb=b\\\nc\nd= d\\\ne  \\\nf  \ng=g\\ \nh= ąęół\\ śćńźżμ \ni=i\\",
			want:  kv("a", "a", "b", "bc", "d", "de  f", "g", "g ", "h", "ąęół śćńźżμ", "i", "i"),
			warns: []string{WarnDuplicate, WarnDuplicate, WarnDuplicate, WarnWhitespace},
		},
		{name: "sd: trailing backslash at the end", in: "a=a\\\n", want: kv("a", "a")},
		{
			name: "sd: comments do not continue (v254+)",
			in:   "#SPAMD_ARGS=\"-d --socketpath=/var/lib/bulwark/spamd \\\n#--nouser-config \\\nnormal1=line\\\n111\n;normal=ignored \\\nnormal2=line222\nnormal ignored \\\n",
			want: kv("normal1", "line111", "normal2", "line222"), warns: []string{WarnNoValue},
		},
		{
			name: "sd: generated file", in: "# Generated\n\nHWMON_MODULES=\"coretemp f71882fg\"\n\n# For compatibility reasons\n\nMODULE_0=coretemp\nMODULE_1=f71882fg",
			want: kv("HWMON_MODULES", "coretemp f71882fg", "MODULE_0", "coretemp", "MODULE_1", "f71882fg"),
		},
		{name: "sd: empty values", in: "a=\nb=", want: kv("a", "", "b", "")},
		{
			name:  "sd: escapes in and out of quotes",
			in:    "a=\\ \\n \\t \\x \\y \\' \nb= \\$'                  \nc= ' \\n\\t\\$\\`\\\\\n'   \nd= \" \\n\\t\\$\\`\\\\\n\"   \n",
			want:  kv("a", " n t x y '", "b", "$'", "c", " \\n\\t\\$\\`\\\\\n", "d", " \\n\\t$`\\\n"),
			warns: []string{WarnWhitespace, WarnWhitespace, WarnWhitespace},
		},
		{name: "semicolon comments", in: "; comment\n  ;indented\n # also\nA=1", want: kv("A", "1")},
		{name: "quotes concatenate", in: "A=\"a\"'b'c\nB=\"x\" \"y\"\nC=a \"b\"", want: kv("A", "abc", "B", "xy", "C", `a "b"`)},
		{
			name: "no inline comments (dotenv differs)", in: "A=value # comment\nB=\"q\" # c", want: kv("A", "value # comment", "B", "q# c"),
			warns: []string{WarnComment, WarnComment},
		},
		{name: "glued hash is quiet", in: "A=a#b\nB=#b", want: kv("A", "a#b", "B", "#b")},
		{name: "blanks around = and name", in: "  A  =  b  \n", want: kv("A", "b")},
		{name: "dollar is literal", in: "A=$HOME ${X} $(id)", want: kv("A", "$HOME ${X} $(id)")},
		{name: "single quotes have no escapes", in: `A='a\'`, want: kv("A", `a\`)},
		{name: "unknown escapes in double quotes keep the backslash", in: `A="a\x\"b"`, want: kv("A", `a\x"b`)},
		{name: "multi-line quotes", in: "A=\"line 1\nline 2\"\nB='x\ny'", want: kv("A", "line 1\nline 2", "B", "x\ny")},
		{name: "CRLF", in: "A=1\r\nB=\"x\"\r\n", want: kv("A", "1", "B", "x")},
		{name: "CR inside quotes is kept", in: "A=\"x\r\ny\"\r\n", want: kv("A", "x\r\ny"), warns: []string{WarnSyntax}},
		{name: "BOM glued to the first name", in: "\ufeffA=" + secretMarker, err: "1:1: the file starts with a byte order mark"},
		{name: "BOM before blanks and a name", in: "\ufeff  A=1", err: "1:3: the file starts with a byte order mark"},
		{name: "BOM before a comment", in: "\ufeff# c\nA=1", want: kv("A", "1")},
		{name: "name alone is ignored", in: "A\nB=1", want: kv("B", "1"), warns: []string{WarnNoValue}},
		{name: "garbage is ignored", in: "this is not an assignment\nB=1", want: kv("B", "1"), warns: []string{WarnNoValue}},
		{name: "export is refused", in: "export A=" + secretMarker, err: `1:1: invalid name: systemd does not understand "export"`},
		{name: "dots are refused", in: "A.B=" + secretMarker, err: "1:1: invalid name: systemd accepts only"},
		{name: "leading digit", in: "1A=" + secretMarker, err: "1:1: invalid name"},
		{name: "leading dot", in: ".A=" + secretMarker, err: "1:1: invalid name"},
		{name: "blank in name", in: "A B=" + secretMarker, err: "1:1: invalid name"},
		{name: "line starting with = is ignored", in: "=" + secretMarker, want: kv(), warns: []string{WarnNoValue}},
		{name: "name starting with =", in: "=" + secretMarker + "=x", err: "1:1: invalid name"},
		{name: "unterminated double quote", in: "A=\"" + secretMarker + "\nB=2", err: "1:3: unterminated double-quoted value"},
		{name: "unterminated single quote", in: "A=1\nB= '" + secretMarker, err: "2:4: unterminated single-quoted value"},
		{name: "unterminated after escape", in: "A=\"x\\", err: "1:3: unterminated double-quoted value"},
		{name: "NUL", in: "A=" + secretMarker + "\x00", err: "1:9: NUL byte"},
		{name: "dangerous", in: "LD_PRELOAD=x", want: kv("LD_PRELOAD", "x"), warns: []string{WarnDangerous}},
	})
}

func TestDocker(t *testing.T) {
	runParseCases(t, Docker, []parseCase{
		{name: "basic", in: "A=1\nB=two words\n", want: kv("A", "1", "B", "two words")},
		{
			name: "values are literal", in: `A="quoted"` + "\nB='single'\nC=x # not a comment\nD=$HOME\\n",
			want:  kv("A", `"quoted"`, "B", "'single'", "C", "x # not a comment", "D", `$HOME\n`),
			warns: []string{WarnQuote, WarnQuote, WarnComment},
		},
		{name: "blanks kept in values", in: "A= b \n", want: kv("A", " b "), warns: []string{WarnWhitespace}},
		{name: "leading blanks of the line are dropped", in: "  \tA=b", want: kv("A", "b")},
		{name: "comments", in: "# c\n   # indented\nA=1 #x", want: kv("A", "1 #x"), warns: []string{WarnComment}},
		{name: "CRLF", in: "A=b\r\nC=d\r\n", want: kv("A", "b", "C", "d")},
		{name: "only one CR dropped", in: "A=b\r\r\n", want: kv("A", "b\r")},
		{name: "empty", in: "A=\n", want: kv("A", "")},
		{name: "equals in value", in: "A=b=c==", want: kv("A", "b=c==")},
		{name: "BOM", in: "\ufeffA=1", want: kv("A", "1")},
		{name: "pass-through name is skipped", in: "HOME\nA=1", want: kv("A", "1"), warns: []string{WarnNoValue}},
		{name: "dots warned", in: "a.b=1", want: kv("a.b", "1"), warns: []string{WarnName}},
		{name: "duplicate", in: "A=1\nA=2", want: kv("A", "2"), warns: []string{WarnDuplicate}},
		{name: "blank before =", in: "A =" + secretMarker, err: "1:1: invalid name: names cannot contain blanks"},
		{name: "export", in: "export A=" + secretMarker, err: "1:1: invalid name: names cannot contain blanks"},
		{name: "missing name", in: "=" + secretMarker, err: `1:1: missing name before "="`},
		{name: "leading digit (warned)", in: "1A=x", want: kv("1A", "x"), warns: []string{WarnName}},
		{name: "invalid name", in: ".A=" + secretMarker, err: "1:1: invalid name"},
		{name: "garbage", in: secretMarker + "!", err: "1:1: not a NAME=VALUE assignment"},
		{name: "line too long", in: "A=" + strings.Repeat("x", 70000), err: "1:1: line is longer than 64 KiB"},
		{name: "invalid UTF-8", in: "A=\xff", err: "1:3: invalid UTF-8"},
		{name: "UTF-16", in: "\xff\xfeA\x00=\x001\x00", err: "1:1: the file is UTF-16"},
	})
}

func TestJSON(t *testing.T) {
	runParseCases(t, JSON, []parseCase{
		{name: "flat object, order kept", in: `{"B":"2","A":"1","C":""}`, want: kv("B", "2", "A", "1", "C", "")},
		{name: "empty object", in: "{}\n", want: kv()},
		{name: "escapes", in: `{"A":"line\nnext \"q\" \\ \u00e9 \ud83d\ude00 \t."}`, want: kv("A", "line\nnext \"q\" \\ é 😀 \t.")},
		{name: "literal replacement character", in: `{"A":"\ufffd �"}`, want: kv("A", "\ufffd \ufffd")},
		{name: "duplicate keys", in: `{"A":"1","A":"2"}`, want: kv("A", "2"), warns: []string{WarnDuplicate}},
		{name: "blanks kept", in: `{"A":" x "}`, want: kv("A", " x "), warns: []string{WarnWhitespace}},
		{name: "BOM", in: "\ufeff{\"A\":\"1\"}", want: kv("A", "1")},
		{name: "dangerous", in: `{"PATH":"/bin"}`, want: kv("PATH", "/bin"), warns: []string{WarnDangerous}},
		{name: "number", in: "{\n  \"PORT\": 8080\n}", err: `2:11: the value of "PORT" is a number`},
		{name: "boolean and null", in: `{"A":true,"B":null}`, err: `1:6: the value of "A" is a boolean`},
		{name: "nested", in: `{"A":{"x":"` + secretMarker + `"},"B":["y"],"C":"ok"}`, err: `1:6: the value of "A" is an object`},
		{name: "array at top", in: `["` + secretMarker + `"]`, err: "1:1: the JSON must be one object of strings"},
		{name: "invalid JSON hides characters", in: `{"A": ` + secretMarker + `}`, err: "invalid JSON: invalid character looking for beginning of value"},
		{name: "truncated", in: `{"A": "` + secretMarker, err: "invalid JSON: unexpected end of the file"},
		{name: "trailing data", in: `{"A":"1"} {"B":"` + secretMarker + `"}`, err: "1:11: unexpected data after the JSON object"},
		{name: "empty file", in: "", err: "invalid JSON: unexpected end of the file"},
		{name: "NUL escape", in: `{"A":"x\u0000` + secretMarker + `"}`, err: "1:6: the value contains a NUL character"},
		{name: "unpaired surrogate", in: `{"A":"\ud800` + secretMarker + `"}`, err: `1:6: the value has an invalid \u escape`},
		{name: "leading digit (warned)", in: `{"1A":"x"}`, want: kv("1A", "x"), warns: []string{WarnName}},
		{name: "invalid name", in: `{"-A":"` + secretMarker + `"}`, err: "1:2: invalid name"},
		{name: "invalid name and a number", in: `{"a b":1}`, err: "1:2: invalid name"},
	})
	// All problems are reported.
	_, err := Parse(strings.NewReader(`{"A":1,"B":"ok","C":[1,2],".D":"x"}`), Options{Format: JSON})
	var l ErrorList
	if !errors.As(err, &l) || len(l) != 3 {
		t.Errorf("got %v, want 3 errors", err)
	}
}

func TestFormatNames(t *testing.T) {
	for in, want := range map[string]Format{
		"dotenv": Dotenv, "ENV": Dotenv, ".env": Dotenv, "systemd": Systemd,
		"EnvironmentFile": Systemd, "docker": Docker, "env-file": Docker, " json ": JSON,
	} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseFormat("yaml"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("ParseFormat(yaml) = %v", err)
	}
	for f, s := range map[Format]string{Dotenv: "dotenv", Systemd: "systemd", Docker: "docker", JSON: "json", 9: "Format(9)"} {
		if f.String() != s {
			t.Errorf("%d.String() = %q", int(f), f.String())
		}
	}
	var f Format
	if err := f.Set("json"); err != nil || f != JSON || f.Type() != "format" {
		t.Errorf("Set: %v %v", f, err)
	}
	if err := f.Set("nope"); err == nil || f != JSON {
		t.Errorf("Set(nope): %v %v", f, err)
	}
	if _, err := Parse(strings.NewReader(""), Options{Format: 7}); err == nil {
		t.Error("Parse with an unknown format: want an error")
	}
}

func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *SyntaxError
		want string
	}{
		{&SyntaxError{File: "a.env", Line: 3, Column: 7, Msg: "m"}, "a.env:3:7: m"},
		{&SyntaxError{Line: 3, Column: 7, Msg: "m"}, "3:7: m"},
		{&SyntaxError{File: "a.env", Line: 3, Msg: "m"}, "a.env:3: m"},
		{&SyntaxError{File: "a.env", Msg: "m"}, "a.env: m"},
		{&SyntaxError{Msg: "m"}, "m"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	w := Warning{File: "a.env", Line: 1, Column: 2, Code: WarnDuplicate, Message: "m"}
	if w.String() != "a.env:1:2: m" {
		t.Errorf("Warning.String() = %q", w.String())
	}
	if got := (ErrorList{}).Error(); got != "no errors" {
		t.Errorf("empty list: %q", got)
	}
	two := ErrorList{{Msg: "a"}, {Msg: "b"}}
	if got := two.Error(); got != "a (and 1 more error)" {
		t.Errorf("two errors: %q", got)
	}
	// The error cap.
	_, err := Parse(strings.NewReader(strings.Repeat(".A=x\n", 200)), Options{})
	var l ErrorList
	if !errors.As(err, &l) || len(l) != maxErrors+1 || l[maxErrors].Msg != "too many errors" {
		t.Errorf("got %d errors", len(l))
	}
}

func TestWipe(t *testing.T) {
	res, err := Parse(strings.NewReader("A=secret\nB='x'"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Entries[0].Value
	res.Wipe()
	if strings.Trim(string(v), "\x00") != "" {
		t.Errorf("value not wiped: %q", v)
	}
	(*Result)(nil).Wipe()
}
