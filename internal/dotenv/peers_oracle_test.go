// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// warned marks a value the peers disagree on: it must carry a warning on
// its line (the value itself is checked by the golden-free tables of
// dotenv_test.go).
const warned = "\x00warned"

// peerSuites is, for each file of testdata/peers, what the peer libraries'
// own test suites assert, written by hand from those suites (godotenv
// godotenv_test.go, compose-go dotenv/godotenv_test.go, dotenv
// tests/test-parse.js and tests/test-parse-multiline.js, Ruby dotenv
// spec/dotenv/parser_spec.rb), not from this parser's output. A nil map
// means the file is refused, with every error at a file:line:col position.
var peerSuites = map[string]map[string]string{
	"godotenv-plain.env": {"OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "3", "OPTION_D": "4", "OPTION_E": "5",
		"OPTION_F": "", "OPTION_G": "", "OPTION_H": "1 2"},
	"godotenv-quoted.env": {"OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "", "OPTION_D": `\n`, "OPTION_E": "1",
		"OPTION_F": "2", "OPTION_G": "", "OPTION_H": "\n", "OPTION_I": "echo 'asd'", "OPTION_J": "line 1\nline 2",
		"OPTION_K": warned, // godotenv, Node, Ruby keep \' in single quotes; compose-go and python-dotenv decode it
		"OPTION_L": "line 1\nline 2", "OPTION_M": "line one\nthis is \"quoted\"\none more line"},
	"godotenv-comments.env": {"qux": "thud", "thud": warned, "fred": warned, "foo": "bar", "bar": warned, "baz": "foo"},
	"godotenv-equals.env":   {"OPTION_A": "postgres://localhost:5432/database?sslmode=disable"},
	"godotenv-exported.env": {"OPTION_A": "2", "OPTION_B": `\n`},
	"godotenv-substitutions.env": {"OPTION_A": "1", "OPTION_B": warned, "OPTION_C": warned, "OPTION_D": warned,
		"OPTION_E": warned, "OPTION_F": warned},
	"godotenv-invalid1.env": nil,
	"compose-plain.env": {"OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "3", "OPTION_D": "4", "OPTION_E": "5",
		"456": "ABC", "OPTION_F": "", "OPTION_G": "", "OPTION_H": "my string"},
	"compose-quoted.env": {"OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "", "OPTION_D": `\n`, "OPTION_E": "1",
		"OPTION_F": "2", "OPTION_G": "", "OPTION_H": "\n", "OPTION_I": "echo 'asd'",
		"OPTION_J": "first line\nsecond line\nthird line\nand so on", "OPTION_K": warned, "OPTION_Z": "last value"},
	"compose-unquoted.env": {"OPTION_A": "some quoted phrase", "OPTION_B": "first one with an unquoted phrase",
		"OPTION_C": "then another one with an unquoted phrase",
		"OPTION_D": "then another one with an unquoted phrase special è char", "OPTION_E": "then another one quoted phrase"},
	"compose-special.env": {"VAR.WITH.DOTS": "dots", "VAR_WITH_UNDERSCORES": "underscores", "VAR-WITH-DASHES": "dashes"},
	"compose-equals.env":  {"OPTION_A": "postgres://localhost:5432/database?sslmode=disable"},
	"compose-utf8-bom.env": {"OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "3", "OPTION_D": "4", "OPTION_E": "5",
		"456": "ABC", "OPTION_F": "", "OPTION_G": "", "OPTION_H": "my string"},
	"compose-invalid1.env": nil,
	"node-bom.env":         {"BASIC": "basic", "SECOND": "two"},
	// Node's assertions; where Node strips backticks or cuts at a glued "#", the others do not.
	"node-basic.env": {"BASIC": "basic", "AFTER_LINE": "after_line", "EMPTY": "", "EMPTY_SINGLE_QUOTES": "",
		"EMPTY_DOUBLE_QUOTES": "", "EMPTY_BACKTICKS": warned, "SINGLE_QUOTES": "single_quotes",
		"SINGLE_QUOTES_SPACED": "    single quotes    ", "DOUBLE_QUOTES": "double_quotes",
		"DOUBLE_QUOTES_SPACED":                "    double quotes    ",
		"DOUBLE_QUOTES_INSIDE_SINGLE":         `double "quotes" work inside single quotes`,
		"DOUBLE_QUOTES_WITH_NO_SPACE_BRACKET": "{ port: $MONGOLAB_PORT}",
		"SINGLE_QUOTES_INSIDE_DOUBLE":         "single 'quotes' work inside double quotes",
		"BACKTICKS_INSIDE_SINGLE":             "`backticks` work inside single quotes",
		"BACKTICKS_INSIDE_DOUBLE":             "`backticks` work inside double quotes",
		"BACKTICKS":                           warned, "BACKTICKS_SPACED": warned, "DOUBLE_QUOTES_INSIDE_BACKTICKS": warned,
		"SINGLE_QUOTES_INSIDE_BACKTICKS": warned, "DOUBLE_AND_SINGLE_QUOTES_INSIDE_BACKTICKS": warned,
		"EXPAND_NEWLINES": "expand\nnew\nlines", "DONT_EXPAND_UNQUOTED": `dontexpand\nnewlines`,
		"DONT_EXPAND_SQUOTED": `dontexpand\nnewlines`, "INLINE_COMMENTS": "inline comments",
		"INLINE_COMMENTS_SINGLE_QUOTES": "inline comments outside of #singlequotes",
		"INLINE_COMMENTS_DOUBLE_QUOTES": "inline comments outside of #doublequotes",
		"INLINE_COMMENTS_BACKTICKS":     warned, "INLINE_COMMENTS_SPACE": warned, "EQUAL_SIGNS": "equals==",
		"RETAIN_INNER_QUOTES": `{"foo": "bar"}`, "RETAIN_INNER_QUOTES_AS_STRING": `{"foo": "bar"}`,
		"RETAIN_INNER_QUOTES_AS_BACKTICKS": warned, "TRIM_SPACE_FROM_UNQUOTED": "some spaced out string",
		"USERNAME": "therealnerdybeast@example.tld", "SPACED_KEY": "parsed", "EXPORT_IS_DECLARED": "parsed",
		"EXPORT_IS_DECLARED_WITH_SPACING": "parsed", "EXPORT_IS_DECLARED_WITH_SOME_VALUE": "some_value",
		"EXPORT_IS_DECLARED_WITH_SOME_VALUE_SPACED":      "some_value",
		"EXPORT_IS_DECLARED_WITH_SOME_VALUE_AND_SPACING": "some_value"},
	"node-multiline.env": nil, // a value in backticks across lines, which only Node reads
	"ruby-plain.env":     {"PLAIN": "true", "OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "3", "OPTION_D": "4", "OPTION_E": "5"},
	"ruby-quoted.env": {"QUOTED": "true", "OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "", "OPTION_D": `\n`, "OPTION_E": "1",
		"OPTION_F": "2", "OPTION_G": "", "OPTION_H": warned}, // Ruby 3.x keeps \n in double quotes by default
	"ruby-yaml.env":     {"OPTION_A": "1", "OPTION_B": "2", "OPTION_C": "", "OPTION_D": `\n`},
	"ruby-exported.env": {"OPTION_A": "2", "OPTION_B": `\n`},
	"ruby-bom.env":      {"BOM": "UTF-8"},
}

func TestPeerSuites(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "peers", "*.env"))
	if err != nil || len(files) != len(peerSuites) {
		t.Fatalf("testdata/peers has %d files, peerSuites %d (%v)", len(files), len(peerSuites), err)
	}
	for _, path := range files {
		base := filepath.Base(path)
		want, ok := peerSuites[base]
		if !ok {
			t.Errorf("%s: no expectations", base)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Parse(bytes.NewReader(data), Options{Filename: base})
		if want == nil {
			var l ErrorList
			if !errors.As(err, &l) {
				t.Errorf("%s: got %v, want the file refused", base, err)
				continue
			}
			for _, e := range l {
				if e.Line == 0 || e.Column == 0 || e.File != base {
					t.Errorf("%s: error without a position: %v", base, e)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		warnedLines := map[int]bool{}
		for _, w := range res.Warnings {
			warnedLines[w.Line] = true
		}
		got := map[string]Entry{}
		for _, e := range res.Entries {
			got[e.Name] = e
		}
		for name, v := range want {
			e, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: %s missing", base, name)
			case v == warned && !warnedLines[e.Line]:
				t.Errorf("%s:%d: %s, which the peers read differently, has no warning", base, e.Line, name)
			case v != warned && string(e.Value) != v:
				t.Errorf("%s:%d: %s = %q, the peers' suites say %q", base, e.Line, name, e.Value, v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d entries, the suites assert %d", base, len(got), len(want))
		}
	}
}

// TestNodeOracle reads every fixture with the real motdotla/dotenv
// (testdata/node, installed by `npm ci` there) and requires every value it
// reads differently from this parser to carry a warning on its line.
func TestNodeOracle(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the motdotla/dotenv oracle is skipped")
	}
	if _, err := os.Stat(filepath.Join("testdata", "node", "node_modules", "dotenv")); err != nil {
		t.Skip("testdata/node/node_modules is missing (run `npm ci` in internal/dotenv/testdata/node): the motdotla/dotenv oracle is skipped")
	}
	var files []string
	for _, g := range []string{"peers/*.env", "dotenv/*.env"} {
		m, _ := filepath.Glob(filepath.Join("testdata", g))
		files = append(files, m...)
	}
	out, err := exec.Command(node, append([]string{filepath.Join("testdata", "node", "parse.js")}, files...)...).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var oracle map[string]map[string]string
	if err := json.Unmarshal(out, &oracle); err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, path := range files {
		if strings.Contains(path, ".expand.") {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Parse(bytes.NewReader(data), Options{Filename: path})
		if err != nil {
			continue // refused, with positions (TestFixtures, TestPeerSuites)
		}
		warnedLines := map[int]bool{}
		for _, w := range res.Warnings {
			warnedLines[w.Line] = true
		}
		for _, e := range res.Entries {
			nv, ok := oracle[path][e.Name]
			if ok && nv == string(e.Value) {
				compared++
				continue
			}
			if !warnedLines[e.Line] {
				t.Errorf("%s:%d: %s = %q, Node's dotenv reads %q (present %v), and there is no warning", path, e.Line, e.Name, e.Value, nv, ok)
			}
		}
	}
	if compared < 50 {
		t.Errorf("only %d values agreed with Node's dotenv", compared)
	}
	t.Logf("%d values read the same as motdotla/dotenv", compared)
}

// TestPythonSuite runs the cases of python-dotenv's own parser test (testdata/peers/
// python-test_parser.json, extracted from its tests/test_parser.py): each input is refused with
// positioned errors, or every binding python-dotenv expects is read with its value or has a
// warning on its line. A name python-dotenv reads without a value must not get one here.
func TestPythonSuite(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "peers", "python-test_parser.json"))
	if err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Cases []struct {
			Input    string `json:"input"`
			Bindings []struct {
				Key   *string `json:"key"`
				Value *string `json:"value"`
				Line  int     `json:"line"`
				Error bool    `json:"error"`
			} `json:"bindings"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &suite); err != nil {
		t.Fatal(err)
	}
	if len(suite.Cases) < 40 {
		t.Fatalf("only %d cases", len(suite.Cases))
	}
	agreed := 0
	for _, c := range suite.Cases {
		res, err := Parse(strings.NewReader(c.Input), Options{Filename: "py.env"})
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || l[0].Line == 0 || l[0].Column == 0 {
				t.Errorf("%q: refused without a position: %v", c.Input, err)
			}
			continue
		}
		got := map[string]string{}
		for _, e := range res.Entries {
			got[e.Name] = string(e.Value)
		}
		warnedLines := map[int]bool{}
		for _, w := range res.Warnings {
			warnedLines[w.Line] = true
		}
		for _, b := range c.Bindings {
			if b.Key == nil || b.Error {
				continue
			}
			v, ok := got[*b.Key]
			switch {
			case b.Value == nil && ok:
				t.Errorf("%q: %s has no value in python-dotenv, here %q", c.Input, *b.Key, v)
			case b.Value == nil:
			case ok && v == *b.Value:
				agreed++
			case !warnedLines[b.Line]:
				t.Errorf("%q: %s = %q (set: %v), python-dotenv %q, and no warning on line %d", c.Input, *b.Key, v, ok, *b.Value, b.Line)
			}
		}
	}
	t.Logf("%d values read as python-dotenv's suite expects", agreed)
}

// rubySuite is Ruby dotenv's spec/dotenv/parser_spec.rb, transcribed by hand from its Ruby
// literals: input, and what Ruby dotenv 3.x reads (empty environment, no command execution).
var rubySuite = []struct {
	in   string
	want map[string]string
}{
	{"FOO=bar", map[string]string{"FOO": "bar"}},
	{"FOO= bar", map[string]string{"FOO": "bar"}},
	{`FOO=bar\ bar`, map[string]string{"FOO": "bar bar"}},
	{"FOO =bar", map[string]string{"FOO": "bar"}},
	{"  FOO=bar", map[string]string{"FOO": "bar"}},
	{"FOO=bar  ", map[string]string{"FOO": "bar"}},
	{`FOO="bar"`, map[string]string{"FOO": "bar"}},
	{`FOO="bar"  `, map[string]string{"FOO": "bar"}},
	{"FOO='bar'", map[string]string{"FOO": "bar"}},
	{"FOO='bar'  ", map[string]string{"FOO": "bar"}},
	{`FOO="escaped\"bar"`, map[string]string{"FOO": `escaped"bar`}},
	{"FOO=", map[string]string{"FOO": ""}},
	{"FOO=test\nBAR=$FOO", map[string]string{"FOO": "test", "BAR": "test"}},
	{"FOO=test\nBAR=${FOO}bar", map[string]string{"FOO": "test", "BAR": "testbar"}},
	{"BAR=$FOO", map[string]string{"BAR": ""}},
	{"FOO=test\nBAR=\"quote $FOO\"", map[string]string{"FOO": "test", "BAR": "quote test"}},
	{"BAR='quote $FOO'", map[string]string{"BAR": "quote $FOO"}},
	{`FOO="foo\$BAR"`, map[string]string{"FOO": "foo$BAR"}},
	{`FOO="foo\${BAR}"`, map[string]string{"FOO": "foo${BAR}"}},
	{"OPTION_A: 1", map[string]string{"OPTION_A": "1"}},
	{"export OPTION_A=2", map[string]string{"OPTION_A": "2"}},
	{`FOO="bar\nbaz"`, map[string]string{"FOO": `bar\nbaz`}},
	{"FOO.BAR=foobar", map[string]string{"FOO.BAR": "foobar"}},
	{"foo=bar ", map[string]string{"foo": "bar"}},
	{"\n \t  \nfoo=bar\n \nfizz=buzz", map[string]string{"foo": "bar", "fizz": "buzz"}},
	{"foo=bar # this is foo", map[string]string{"foo": "bar"}},
	{`foo="bar#baz" # comment`, map[string]string{"foo": "bar#baz"}},
	{`foo= "bar#baz" # comment`, map[string]string{"foo": "bar#baz"}},
	{"\n\n\n # HERE GOES FOO \nfoo=bar", map[string]string{"foo": "bar"}},
	{"# HELLO=world\n", map[string]string{}},
	{"DATABASE_PASSWORD=\nDATABASE_USERNAME=root\nDATABASE_HOST=/tmp/mysql.sock",
		map[string]string{"DATABASE_PASSWORD": "", "DATABASE_USERNAME": "root", "DATABASE_HOST": "/tmp/mysql.sock"}},
	{`foo="ba#r"`, map[string]string{"foo": "ba#r"}},
	{"foo='ba#r'  ", map[string]string{"foo": "ba#r"}},
	{"OPTION_A=first line\nexport OPTION_B='line 1\nline 2\nline 3'\nOPTION_C=\"last line\"\nOPTION_ESCAPED='line one\nthis is \\'quoted\\'\none more line'",
		map[string]string{"OPTION_A": "first line", "OPTION_B": "line 1\nline 2\nline 3", "OPTION_C": "last line",
			"OPTION_ESCAPED": "line one\nthis is \\'quoted\\'\none more line"}},
	{"OPTION_A=first line\nexport OPTION_B=\"line 1\nline 2\nline 3\"\nOPTION_C=\"last line\"\nOPTION_ESCAPED=\"line one\nthis is \\\"quoted\\\"\none more line\"",
		map[string]string{"OPTION_A": "first line", "OPTION_B": "line 1\nline 2\nline 3", "OPTION_C": "last line",
			"OPTION_ESCAPED": "line one\nthis is \"quoted\"\none more line"}},
	{"echo=$(echo hello)", map[string]string{"echo": "hello"}},
	{"FOO=bar\rbaz=fbb", map[string]string{"FOO": "bar", "baz": "fbb"}},
	{"FOO=bar\r\nbaz=fbb", map[string]string{"FOO": "bar", "baz": "fbb"}},
	{`FOO="bar\rbaz"`, map[string]string{"FOO": `bar\rbaz`}},
	{`FOO="bar\$ \$\$"`, map[string]string{"FOO": "bar$ $$"}},
	{`FOO="bar $ "`, map[string]string{"FOO": "bar $ "}},
}

// TestRubySuite: every value Ruby dotenv's spec expects is read the same, or carries a warning
// on its line (expansion and command substitution, which are off here, and \n kept in double
// quotes, are such differences); a refused input has positioned errors.
func TestRubySuite(t *testing.T) {
	agreed := 0
	for _, c := range rubySuite {
		res, err := Parse(strings.NewReader(c.in), Options{})
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || l[0].Line == 0 || l[0].Column == 0 {
				t.Errorf("%q: refused without a position: %v", c.in, err)
			}
			continue
		}
		warnedLines := map[int]bool{}
		for _, w := range res.Warnings {
			warnedLines[w.Line] = true
		}
		got := map[string]Entry{}
		for _, e := range res.Entries {
			got[e.Name] = e
		}
		for k, v := range c.want {
			e, ok := got[k]
			switch {
			case !ok:
				t.Errorf("%q: %s missing", c.in, k)
			case string(e.Value) == v:
				agreed++
			case !warnedLines[e.Line]:
				t.Errorf("%q: %s = %q, Ruby dotenv %q, and no warning", c.in, k, e.Value, v)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: %d entries, Ruby dotenv %d", c.in, len(got), len(c.want))
		}
	}
	t.Logf("%d values read as Ruby dotenv's spec expects", agreed)
}
