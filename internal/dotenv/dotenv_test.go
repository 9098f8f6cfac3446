// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// Case names say which peer test suite a behaviour comes from (node:
// motdotla/dotenv, go: joho/godotenv, compose: compose-go, py:
// python-dotenv, rb: Ruby dotenv). Where peers disagree the case says so
// and expects a warning.

func TestDotenvBasics(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "basic", in: "BASIC=basic\n", want: kv("BASIC", "basic")},
		{name: "empty file", in: "", want: kv()},
		{name: "only blank lines and comments", in: "\n\n# a comment\n  # indented comment\n\t\n", want: kv()},
		{
			name: "node: after blank line", in: "\n# previous line intentionally left blank\nAFTER_LINE=after_line\n",
			want: kv("AFTER_LINE", "after_line"),
		},
		{name: "no final newline", in: "A=1\nB=2", want: kv("A", "1", "B", "2")},
		{name: "empty values", in: "A=\nB=''\nC=\"\"\nD=", want: kv("A", "", "B", "", "C", "", "D", "")},
		{
			name: "rb: variables without values", in: "DATABASE_PASSWORD=\nDATABASE_USERNAME=root\nDATABASE_HOST=/tmp/mysql.sock",
			want: kv("DATABASE_PASSWORD", "", "DATABASE_USERNAME", "root", "DATABASE_HOST", "/tmp/mysql.sock"),
		},
		{name: "go: blanks around the separator", in: "A = 1\nB= 2\nC =3\n D=4\n\tE=5\n", want: kv("A", "1", "B", "2", "C", "3", "D", "4", "E", "5")},
		{name: "node: spaced key", in: "    SPACED_KEY = parsed\n", want: kv("SPACED_KEY", "parsed")},
		{name: "node: equal signs in value", in: "EQUAL_SIGNS=equals==\n", want: kv("EQUAL_SIGNS", "equals==")},
		{
			name: "go: url value", in: "OPTION_A=postgres://localhost:5432/database?sslmode=disable\n",
			want: kv("OPTION_A", "postgres://localhost:5432/database?sslmode=disable"),
		},
		{name: "go: colon in value", in: "OPTION_A=1:B", want: kv("OPTION_A", "1:B")},
		{name: "node: email", in: "USERNAME=therealnerdybeast@example.tld", want: kv("USERNAME", "therealnerdybeast@example.tld")},
		{name: "node: retain inner quotes", in: `RETAIN_INNER_QUOTES={"foo": "bar"}`, want: kv("RETAIN_INNER_QUOTES", `{"foo": "bar"}`)},
		{name: "node: retain trailing quotes", in: "A=retained\"\nB=retained'", want: kv("A", `retained"`, "B", "retained'")},
		{name: "py: internal blanks kept", in: "a=b c\nd=b\tc\ne=b  c\nf=b\u00a0 c", want: kv("a", "b c", "d", "b\tc", "e", "b  c", "f", "b\u00a0 c")},
		{
			name: "node: trim leading blanks of unquoted", in: "TRIM_SPACE_FROM_UNQUOTED=    some spaced out string",
			want: kv("TRIM_SPACE_FROM_UNQUOTED", "some spaced out string"),
		},
		{name: "unicode value", in: "a=à\nb=\"à\"\nc=ąęół śćńźżμ", want: kv("a", "à", "b", "à", "c", "ąęół śćńźżμ")},
		{
			name: "go: 1000 lines are linear", in: strings.Repeat("K=V\n", 3), want: kv("K", "V"),
			warns: []string{WarnDuplicate, WarnDuplicate},
		},
	})
}

func TestDotenvExport(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "go: export", in: "export OPTION_A=2", want: kv("OPTION_A", "2")},
		{name: "go: export tab", in: "export\tOPTION_A=2", want: kv("OPTION_A", "2")},
		{name: "go: indented export", in: "  export OPTION_A=2\n\texport OPTION_B=3\n \t\t export    C=a\n", want: kv("OPTION_A", "2", "OPTION_B", "3", "C", "a")},
		{name: "go: export single quoted", in: `export OPTION_B='\n'`, want: kv("OPTION_B", `\n`)},
		{
			name: "go: names starting with export", in: "export exportFoo=2\nexportFOO=3\nexport_FOO =4\n",
			want: kv("exportFoo", "2", "exportFOO", "3", "export_FOO", "4"),
		},
		{name: "go: export.FOO", in: "export.FOO= 2", want: kv("export.FOO", "2"), warns: []string{WarnName}},
		{name: "a variable called export", in: "export=1", want: kv("export", "1")},
		{name: "py: export export_a", in: "export export_a=1\nexport port=8000", want: kv("export_a", "1", "port", "8000")},
		{
			name: "rb: export without assignment", in: "OPTION_A=2\nexport OPTION_A", want: kv("OPTION_A", "2"),
			warns: []string{WarnNoValue},
		},
		{name: "rb: export of several names", in: "export A B # comment", want: kv(), warns: []string{WarnNoValue}},
		{name: "export alone", in: "export\nexport \n", want: kv(), warns: []string{WarnNoValue, WarnNoValue}},
	})
}

func TestDotenvComments(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "node: commented assignment", in: "# COMMENTS=work\n", want: kv()},
		{name: "rb: comment lines", in: "\n\n\n # HERE GOES FOO \nfoo=bar", want: kv("foo", "bar")},
		{name: "node: inline comment", in: "INLINE_COMMENTS=inline comments # work #very #well", want: kv("INLINE_COMMENTS", "inline comments")},
		{name: "py: comment after tab (compose keeps it)", in: "a=b\t#c", want: kv("a", "b"), warns: []string{WarnComment}},
		{
			name: "go: comments fixture", in: "# Full line comment\nqux=thud # fred # other\nfoo=bar # baz\n",
			want: kv("qux", "thud", "foo", "bar"),
		},
		{name: "py: hash glued to the value (node and rb differ)", in: "a=b#c", want: kv("a", "b#c"), warns: []string{WarnComment}},
		{
			name: "node: comment must start with blank (node differs)", in: "INLINE_COMMENTS_SPACE=inline comments must start with#space",
			want: kv("INLINE_COMMENTS_SPACE", "inline comments must start with#space"), warns: []string{WarnComment},
		},
		{
			name: "go: glued hash then comment", in: "thud=fred#qux # other\nfred=qux#baz # other # more",
			want: kv("thud", "fred#qux", "fred", "qux#baz"), warns: []string{WarnComment, WarnComment},
		},
		{name: "py: value starting with hash (node and rb read empty)", in: "a=#b", want: kv("a", "#b"), warns: []string{WarnComment}},
		{
			name: "py: only a comment after blanks (go and compose differ)", in: "a= #c\nb=  # comment", want: kv("a", "", "b", ""),
			warns: []string{WarnComment, WarnComment},
		},
		{
			name: "node: comment after single quotes", in: "A='inline comments outside of #singlequotes' # work",
			want: kv("A", "inline comments outside of #singlequotes"), warns: []string{WarnComment},
		},
		{
			name: "node: comment after double quotes", in: `A="inline comments outside of #doublequotes" # work`,
			want: kv("A", "inline comments outside of #doublequotes"), warns: []string{WarnComment},
		},
		{name: "go: comment glued to closing quote", in: `baz="foo"#bar`, want: kv("baz", "foo"), warns: []string{WarnComment}},
		{
			name: "rb: hash inside quotes", in: "foo=\"ba#r\"\nbar='ba#r'\nbaz=\"bar#baz#bang\"  ",
			want: kv("foo", "ba#r", "bar", "ba#r", "baz", "bar#baz#bang"),
		},
		{name: "py: ugly but quoted", in: "A=\"S3cr3t_P4ssw#rD\" #\nb=c", want: kv("A", "S3cr3t_P4ssw#rD", "b", "c"), warns: []string{WarnComment}},
	})
}

func TestDotenvWhitespace(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "rb: strip trailing blanks (docker differs)", in: "foo=bar  ", want: kv("foo", "bar"), warns: []string{WarnWhitespace}},
		{name: "go: trailing blanks and tabs", in: "A=a \t \t\n", want: kv("A", "a"), warns: []string{WarnWhitespace}},
		{name: "blank-only value", in: "A=   \n", want: kv("A", ""), warns: []string{WarnWhitespace}},
		{
			name: "node: single quotes keep blanks", in: "A='    single quotes    '", want: kv("A", "    single quotes    "),
			warns: []string{WarnWhitespace},
		},
		{
			name: "node: double quotes keep blanks", in: `A="    double quotes    "`, want: kv("A", "    double quotes    "),
			warns: []string{WarnWhitespace},
		},
		{name: "rb: blanks after closing quote", in: "A='bar'  \nB=\"bar\"\t", want: kv("A", "bar", "B", "bar")},
		{name: "go: mixed leading whitespace lines", in: " \t \t\n\t \t A=a\n", want: kv("A", "a")},
	})
}

func TestDotenvQuotes(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "node: single quotes", in: "SINGLE_QUOTES='single_quotes'", want: kv("SINGLE_QUOTES", "single_quotes")},
		{name: "node: double quotes", in: `DOUBLE_QUOTES="double_quotes"`, want: kv("DOUBLE_QUOTES", "double_quotes")},
		{name: "node: double inside single", in: `A='double "quotes" work inside single quotes'`, want: kv("A", `double "quotes" work inside single quotes`)},
		{name: "node: single inside double", in: `A="single 'quotes' work inside double quotes"`, want: kv("A", "single 'quotes' work inside double quotes")},
		{name: "node: json in single quotes", in: `A='{"foo": "bar"}'`, want: kv("A", `{"foo": "bar"}`)},
		{name: "node: backticks inside quotes", in: "A='`backticks` work'\nB=\"`backticks` work\"", want: kv("A", "`backticks` work", "B", "`backticks` work")},
		{name: "dotenvx: parentheses", in: "PARENTHESES='passwo(rd'", want: kv("PARENTHESES", "passwo(rd")},
		{name: "node: single quotes are literal", in: `DONT_EXPAND_SQUOTED='dontexpand\nnewlines'`, want: kv("DONT_EXPAND_SQUOTED", `dontexpand\nnewlines`)},
		{
			name: "node: unquoted is literal (rb differs)", in: `DONT_EXPAND_UNQUOTED=dontexpand\nnewlines`,
			want: kv("DONT_EXPAND_UNQUOTED", `dontexpand\nnewlines`), warns: []string{WarnEscape},
		},
		{name: "go: escaped quote in single quotes is kept (py differs)", in: `A='it\'s'`, want: kv("A", `it\'s`), warns: []string{WarnEscape}},
		{name: "double backslash in single quotes (py differs)", in: `A='C:\\temp\x'`, want: kv("A", `C:\\temp\x`), warns: []string{WarnEscape}},
		{name: "lone backslash in single quotes", in: `A='a\b'`, want: kv("A", `a\b`)},
		{
			name: "go: multi-line single quotes", in: "OPTION_J='line 1\nline 2'\nOPTION_K='line one\nthis is \\'quoted\\'\none more line'\nNEXT=1",
			want: kv("OPTION_J", "line 1\nline 2", "OPTION_K", "line one\nthis is \\'quoted\\'\none more line", "NEXT", "1"), warns: []string{WarnEscape},
		},
		{name: "node: multi-line double quotes", in: "MULTI=\"THIS\nIS\nA\nMULTILINE\nSTRING\"\nNEXT=1", want: kv("MULTI", "THIS\nIS\nA\nMULTILINE\nSTRING", "NEXT", "1")},
		{
			name: "go: multi-line with escaped quotes", in: "OPTION_M=\"line one\nthis is \\\"quoted\\\"\none more line\"",
			want: kv("OPTION_M", "line one\nthis is \"quoted\"\none more line"), warns: []string{WarnEscape},
		},
		{
			name: "go: pem with escaped quote", in: "K=\"-----BEGIN PUBLIC KEY-----\nAAAA\\\"\nBBBB\n-----END PUBLIC KEY-----\"",
			want: kv("K", "-----BEGIN PUBLIC KEY-----\nAAAA\"\nBBBB\n-----END PUBLIC KEY-----"), warns: []string{WarnEscape},
		},
		{name: "go: quotes and spaces around =", in: "OPTION_I = \"echo 'asd'\"", want: kv("OPTION_I", "echo 'asd'")},
		{name: "py: double quote escapes", in: `a="b\"c"`, want: kv("a", `b"c`), warns: []string{WarnEscape}},
		{
			name: "node: expand newlines in double quotes", in: `EXPAND_NEWLINES="expand\nnew\nlines"`,
			want: kv("EXPAND_NEWLINES", "expand\nnew\nlines"), warns: []string{WarnEscape},
		},
		{name: "carriage return and tab escapes", in: `A="a\rb\tc"`, want: kv("A", "a\rb\tc"), warns: []string{WarnEscape}},
		{name: "escaped backslash", in: `A="C:\\dir\\"`, want: kv("A", `C:\dir\`), warns: []string{WarnEscape}},
		{name: "escaped single quote in double quotes", in: `A="it\'s"`, want: kv("A", "it's"), warns: []string{WarnEscape}},
		{name: "escaped dollar (py, node differ)", in: `A="price: \$5"`, want: kv("A", "price: $5"), warns: []string{WarnEscape}},
		{name: "other escapes kept as written", in: `A="bell\x07 \u12e4 \a \ b"`, want: kv("A", `bell\x07 \u12e4 \a \ b`), warns: []string{WarnEscape}},
		{name: "backslash before a line break kept", in: "A=\"a\\\nb\"", want: kv("A", "a\\\nb"), warns: []string{WarnEscape}},
		{name: "pem without escapes", in: "K=\"-----BEGIN-----\nMIIB\n-----END-----\n\"", want: kv("K", "-----BEGIN-----\nMIIB\n-----END-----\n")},
		{name: "rb: # and blanks after quote", in: "foo= \"bar#baz\" # comment", want: kv("foo", "bar#baz"), warns: []string{WarnComment}},
		{
			name: "node: backticks are not quotes (node differs)", in: "BACKTICKS=`backticks`", want: kv("BACKTICKS", "`backticks`"),
			warns: []string{WarnBacktick},
		},
		{
			name: "backticks with blanks are trimmed like any unquoted value", in: "A=`  x  `", want: kv("A", "`  x  `"),
			warns: []string{WarnBacktick},
		},
	})
}

func TestDotenvLineEnds(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "node: LF", in: "SERVER=localhost\nPASSWORD=password\nDB=tests\n", want: kv("SERVER", "localhost", "PASSWORD", "password", "DB", "tests")},
		{name: "node: CRLF", in: "SERVER=localhost\r\nPASSWORD=password\r\nDB=tests\r\n", want: kv("SERVER", "localhost", "PASSWORD", "password", "DB", "tests")},
		{
			name: "node: CR", in: "SERVER=localhost\rPASSWORD=password\rDB=tests\r", want: kv("SERVER", "localhost", "PASSWORD", "password", "DB", "tests"),
			warns: []string{WarnSyntax},
		},
		{name: "CRLF inside quotes becomes LF", in: "A=\"x\r\ny\"\r\nB='p\r\nq'\r\n", want: kv("A", "x\ny", "B", "p\nq")},
		{name: "CRLF with trailing comment", in: "A=b # c\r\n", want: kv("A", "b")},
		{name: "py: UTF-8 BOM", in: "\ufeffa=b\nc=d", want: kv("a", "b", "c", "d")},
		{name: "only a BOM", in: "\ufeff", want: kv()},
	})
}

func TestDotenvNames(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "lower case and digits", in: "a=1\n_A1=2\nA_1_b=3", want: kv("a", "1", "_A1", "2", "A_1_b", "3")},
		{name: "rb: dots (warned)", in: "FOO.BAR=foobar", want: kv("FOO.BAR", "foobar"), warns: []string{WarnName}},
		{name: "dotenvx: hyphen (warned; go and rb refuse)", in: "HY-PHEN=hyphen", want: kv("HY-PHEN", "hyphen"), warns: []string{WarnName}},
		{name: "node, go, py: leading digit (warned)", in: "456=ABC\n1ABC=x", want: kv("456", "ABC", "1ABC", "x"), warns: []string{WarnName, WarnName}},
		{name: "go: empty name", in: `="` + secretMarker + `"`, err: `1:1: missing name before "="`},
		{name: "compose: brackets", in: "a[1]=" + secretMarker, err: "1:2: invalid character in name"},
		{name: "compose: non-ASCII name", in: "árvíztűrő=" + secretMarker, err: "1:1: invalid character in name"},
		{name: "blank inside name", in: "FOO BAR=" + secretMarker, err: "1:5: invalid name: names cannot contain blanks"},
		{name: "go: garbage line", in: "lol$wut", err: "1:1: not a NAME=VALUE assignment"},
		{name: "secret on its own line", in: "API_KEY=\n" + secretMarker + "+/abc", err: "2:1: not a NAME=VALUE assignment"},
		{name: "quoted garbage", in: `"` + secretMarker + `"`, err: "1:1: not a NAME=VALUE assignment"},
		{name: "leading dot", in: ".A=1", err: "1:1: invalid name"},
		{name: "leading dash", in: "-A=1", err: "1:1: invalid name"},
		{name: "name of 255 bytes (the limit of internal/names)", in: strings.Repeat("A", 255) + "=1", want: kv(strings.Repeat("A", 255), "1")},
		{name: "name of 256 bytes", in: strings.Repeat("A", 256) + "=1", err: "1:1: invalid name"},
		{name: "hash glued to a name", in: "FOO#" + secretMarker, err: "1:1: not a NAME=VALUE assignment"},
		{name: "py: name without = (skipped)", in: "no_value_var\nA=1", want: kv("A", "1"), warns: []string{WarnNoValue}},
		{name: "name without = and comment", in: "FOO # set elsewhere", want: kv(), warns: []string{WarnNoValue}},
		{name: "py: single-quoted name is refused", in: "'a'=b", err: "1:1: invalid character in name"},
		{
			name: "go: YAML separator", in: "OPTION_A: 1\nOPTION_B: Foo=bar\nOPTION_C:x", want: kv("OPTION_A", "1", "OPTION_B", "Foo=bar", "OPTION_C", "x"),
			warns: []string{WarnSyntax, WarnSyntax, WarnSyntax},
		},
		{name: "go: YAML document separator", in: "---\nKEY: value", want: kv("KEY", "value"), warns: []string{WarnSyntax, WarnSyntax}},
		{name: "all problems reported", in: "A!=x\nGOOD=1\n2B=y\nC D=z\n", err: "1:2: invalid character in name"},
	})
}

func TestDotenvDuplicates(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "last wins", in: "A=1\nA=2", want: kv("A", "2"), warns: []string{WarnDuplicate}},
		{name: "order of first appearance", in: "A=1\nB=2\nA=3", want: kv("A", "3", "B", "2"), warns: []string{WarnDuplicate}},
		{name: "empty overrides", in: "A=1\nA=", want: kv("A", ""), warns: []string{WarnDuplicate}},
	})
	res, err := Parse(strings.NewReader("A=1\nB=2\nA=3\nA=4\n"), Options{Filename: "f.env"})
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Entries[0]; e.Line != 4 || e.Column != 1 {
		t.Errorf("winning entry at %d:%d, want 4:1", e.Line, e.Column)
	}
	want := []string{
		`f.env:3:1: "A" is set again (first on line 1); the last value wins`,
		`f.env:4:1: "A" is set again (first on line 1); the last value wins`,
	}
	for i, w := range res.Warnings {
		if w.String() != want[i] {
			t.Errorf("warning %d = %q, want %q", i, w.String(), want[i])
		}
	}
}

func TestDotenvErrors(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{
			name: "node: unterminated double quote (node keeps it literally)", in: "RETAIN_LEADING_DQUOTE=\"" + secretMarker + "\nB=1",
			err: "1:23: unterminated double-quoted value",
		},
		{name: "node: unterminated single quote", in: "RETAIN_LEADING_SQUOTE='" + secretMarker, err: "1:23: unterminated single-quoted value"},
		{name: "escaped closing double quote", in: `A="` + secretMarker + `\"`, err: "1:3: unterminated double-quoted value"},
		{name: "escaped closing single quote", in: `A='` + secretMarker + `\'`, err: "1:3: unterminated single-quoted value"},
		{name: "py: text after the closing quote", in: `A="` + secretMarker + `"` + secretMarker, err: "1:11: unexpected text after the closing quote"},
		{name: "text after quote and blank", in: `A='` + secretMarker + `' ` + secretMarker, err: "1:12: unexpected text after the closing quote"},
		{name: "dotenvx: nested double quotes", in: `P="$(echo "$` + secretMarker + `")"`, err: "1:12: unexpected text after the closing quote"},
		{name: "NUL byte", in: "A=" + secretMarker + "\x00x", err: "1:9: NUL byte"},
		{name: "invalid UTF-8", in: "A=1\nB=" + secretMarker + "\xff", err: "2:9: invalid UTF-8"},
		{name: "invalid UTF-8 in a comment", in: "# \xc3\x28\nA=1", err: "1:3: invalid UTF-8"},
	})

	// Every problem is reported, with its position.
	_, err := Parse(strings.NewReader("A!=x\nGOOD=1\n.B=y\nC D=z\nE=\"open\n"), Options{Filename: "app.env"})
	var l ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	var got []string
	for _, e := range l {
		got = append(got, e.Error())
	}
	want := []string{
		`app.env:1:2: invalid character in name: ` + nameRule,
		`app.env:3:1: invalid name: ` + nameRule,
		`app.env:4:3: invalid name: names cannot contain blanks`,
		`app.env:5:3: unterminated double-quoted value: no closing '"' before the end of the file`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasSuffix(err.Error(), "(and 3 more errors)") {
		t.Errorf("ErrorList.Error() = %q", err.Error())
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 1 || se.Column != 2 || se.File != "app.env" {
		t.Errorf("errors.As(*SyntaxError) = %+v", se)
	}
}

func TestDotenvDollar(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "dotenvx: lone dollar", in: "DOLLAR=$", want: kv("DOLLAR", "$")},
		{name: "dollar before blank", in: `A="bar $ x"`, want: kv("A", "bar $ x")},
		{
			name: "dotenvx: two dollars (go, rb, compose differ)", in: `TWO_DOLLAR_SIGNS="abcd$$1234"`, want: kv("TWO_DOLLAR_SIGNS", "abcd$$1234"),
			warns: []string{WarnExpansion},
		},
		{
			name: "expansion off: $VAR kept", in: "BASIC=basic\nBASIC_EXPAND=$BASIC", want: kv("BASIC", "basic", "BASIC_EXPAND", "$BASIC"),
			warns: []string{WarnExpansion},
		},
		{
			name: "expansion off: ${VAR} in double quotes kept", in: `A="{ port: ${PORT}}"`, want: kv("A", "{ port: ${PORT}}"),
			warns: []string{WarnExpansion},
		},
		{name: "expansion off: single quotes kept; py expands ${...} there", in: "A='$HOME ${HOME} $(id)'", want: kv("A", "$HOME ${HOME} $(id)"), warns: []string{WarnExpansion}},
		{name: "expansion off: single quotes without ${ do not warn", in: "A='$HOME $(id)'", want: kv("A", "$HOME $(id)")},
		{
			name: "expansion off: escaped dollar unquoted kept", in: `ESCAPED_EXPAND=\$ESCAPED`, want: kv("ESCAPED_EXPAND", `\$ESCAPED`),
			warns: []string{WarnEscape, WarnExpansion},
		},
		{name: "rb: command substitution never runs", in: "echo=$(echo hello)", want: kv("echo", "$(echo hello)"), warns: []string{WarnCommand}},
		{name: "command substitution in double quotes", in: `A="x$(id)"`, want: kv("A", "x$(id)"), warns: []string{WarnCommand}},
		{name: "command substitution with expansion on", in: "A=$(id)", opt: Options{Expand: true}, want: kv("A", "$(id)"), warns: []string{WarnCommand}},
	})
}

func TestDotenvExpand(t *testing.T) {
	on := Options{Expand: true}
	env := Options{Expand: true, Env: envMap(map[string]string{"MACHINE": "machine", "GLOBAL_OPTION": "global", "EMPTY": "", "FOO": "env"})}
	runParseCases(t, Dotenv, []parseCase{
		{name: "go: expands $VAR", in: "FOO=test\nBAR=$FOO", opt: on, want: kv("FOO", "test", "BAR", "test")},
		{name: "go: expands ${VAR}", in: "FOO=test\nBAR=${FOO}bar", opt: on, want: kv("FOO", "test", "BAR", "testbar")},
		{name: "go: undefined is empty", in: "BAR=$FOO", opt: on, want: kv("BAR", ""), warns: []string{WarnExpansion}},
		{name: "go: in double quotes", in: "FOO=test\nBAR=\"quote $FOO\"", opt: on, want: kv("FOO", "test", "BAR", "quote test")},
		{name: "go: not in single quotes", in: "BAR='quote $FOO'", opt: on, want: kv("BAR", "quote $FOO")},
		{name: "go: escaped $", in: `FOO="foo\$BAR"`, opt: on, want: kv("FOO", "foo$BAR"), warns: []string{WarnEscape}},
		{name: "go: escaped ${", in: `FOO="foo\${BAR}"`, opt: on, want: kv("FOO", "foo${BAR}"), warns: []string{WarnEscape}},
		{
			name: "go: escaped and not", in: "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"", opt: on, want: kv("FOO", "test", "BAR", "foo${FOO} test"),
			warns: []string{WarnEscape},
		},
		{name: "dotenvx: escaped unquoted", in: `ESCAPED_EXPAND=\$ESCAPED`, opt: on, want: kv("ESCAPED_EXPAND", "$ESCAPED"), warns: []string{WarnEscape}},
		{
			name: "go: substitutions fixture", in: "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\nOPTION_F=${GLOBAL_OPTION}",
			opt: env, want: kv("OPTION_A", "1", "OPTION_B", "1", "OPTION_C", "1", "OPTION_D", "11", "OPTION_E", "", "OPTION_F", "global"),
			warns: []string{WarnExpansion},
		},
		{
			name: "dotenvx: combos", in: "ONE=one\nTWO=two\nA=${ONE}${TWO}\nB=${ONE}$TWO\nC=$ONE${TWO}\nD=$ONE$TWO", opt: on,
			want: kv("ONE", "one", "TWO", "two", "A", "onetwo", "B", "onetwo", "C", "onetwo", "D", "onetwo"),
		},
		{name: "dotenvx: self reference", in: "EXPAND_SELF=$EXPAND_SELF", opt: on, want: kv("EXPAND_SELF", ""), warns: []string{WarnExpansion}},
		{name: "dotenvx: progressive", in: "P=first\nP=${P}-second", opt: on, want: kv("P", "first-second"), warns: []string{WarnDuplicate}},
		{
			name: "dotenvx: uri", in: "U=user\nPW=pw\nH=db.example\nURI=mongodb://${U}:${PW}@${H}:27017/x", opt: on,
			want: kv("U", "user", "PW", "pw", "H", "db.example", "URI", "mongodb://user:pw@db.example:27017/x"),
		},
		{
			name: "dotenvx: dotted name", in: "POSTGRESQL.BASE.USER=postgres\nPOSTGRESQL.MAIN.USER=${POSTGRESQL.BASE.USER}", opt: on,
			want: kv("POSTGRESQL.BASE.USER", "postgres", "POSTGRESQL.MAIN.USER", "postgres"), warns: []string{WarnName, WarnName},
		},
		{
			name: "dotenvx: default", in: "A=${MACHINE:-default}\nB=${MISSING:-default}\nC=${EMPTY:-default}", opt: env,
			want: kv("A", "machine", "B", "default", "C", "default"),
		},
		{
			name: "dotenvx: default without colon", in: "A=${MACHINE-default}\nB=${MISSING-default}\nC=${EMPTY-default}", opt: env,
			want: kv("A", "machine", "B", "default", "C", ""),
		},
		{
			name: "dotenvx: nested defaults", in: "A=${MACHINE:-${UNDEFINED:-default}}\nB=${MISSING:-${UNDEFINED:-default}}\nC=${MISSING-${UNDEFINED-x${MACHINE}y}}", opt: env,
			want: kv("A", "machine", "B", "default", "C", "xmachiney"),
		},
		{
			name: "alternatives", in: "A=${MACHINE:+alt}\nB=${EMPTY:+alt}\nC=${EMPTY+alt}\nD=${MISSING+alt}", opt: env,
			want: kv("A", "alt", "B", "", "C", "alt", "D", ""),
		},
		{name: "file wins over env", in: "FOO=file\nBAR=$FOO", opt: env, want: kv("FOO", "file", "BAR", "file")},
		{name: "env used when not in file", in: "BAR=$FOO", opt: env, want: kv("BAR", "env")},
		{name: "default with escapes in double quotes", in: `A="${MISSING:-a\"b}"`, opt: on, want: kv("A", `a"b`), warns: []string{WarnEscape}},
		{name: "lone and digit dollars stay", in: "A=$ $1 a$", opt: on, want: kv("A", "$ $1 a$")},
		{name: "unterminated ${", in: "A=${" + secretMarker, opt: on, err: `1:3: unterminated "${"`},
		{name: "bad name in ${}", in: "A=${1}", opt: on, err: `1:3: invalid "${...}"`},
		{name: "unsupported operator", in: "A=${X:?" + secretMarker + "}", opt: on, err: `1:3: unsupported "${...}" form`},
		{name: "too deep", in: "A=" + strings.Repeat("${X:-", 20) + strings.Repeat("}", 20), opt: on, err: "nested too deeply"},
	})
	res, err := Parse(strings.NewReader("A=\"x${NOPE}y\""), Options{Expand: true})
	if err != nil {
		t.Fatal(err)
	}
	if w := res.Warnings[0]; len(res.Warnings) != 1 || w.Line != 1 || w.Column != 5 || w.Code != WarnExpansion {
		t.Errorf("warnings = %v, want one expansion warning at 1:5", res.Warnings)
	}
	if _, err := Parse(strings.NewReader("A=1"), Options{Format: Systemd, Expand: true}); err == nil {
		t.Error("Expand with the systemd format: want an error")
	}
}

func TestDotenvDangerousNames(t *testing.T) {
	runParseCases(t, Dotenv, []parseCase{
		{name: "LD_PRELOAD", in: "LD_PRELOAD=/tmp/x.so", want: kv("LD_PRELOAD", "/tmp/x.so"), warns: []string{WarnDangerous}},
		{name: "LD_ prefix", in: "LD_BIND_NOW=1", want: kv("LD_BIND_NOW", "1"), warns: []string{WarnDangerous}},
		{
			name: "PATH and NODE_OPTIONS", in: "PATH=/bin\nNODE_OPTIONS=--require x", want: kv("PATH", "/bin", "NODE_OPTIONS", "--require x"),
			warns: []string{WarnDangerous, WarnDangerous},
		},
		{name: "lower-case proxy", in: "https_proxy=http://p:3128", want: kv("https_proxy", "http://p:3128"), warns: []string{WarnDangerous}},
		{name: "warned once", in: "IFS=a\nIFS=b", want: kv("IFS", "b"), warns: []string{WarnDangerous, WarnDuplicate}},
		{name: "ordinary names", in: "PATHS=1\nMY_PATH=2\nENVIRONMENT=3", want: kv("PATHS", "1", "MY_PATH", "2", "ENVIRONMENT", "3")},
	})
}

func TestSizeLimit(t *testing.T) {
	line := "A=" + strings.Repeat("x", 1000) + "\n"
	exact := strings.Repeat(line, MaxFileSize/len(line))
	exact += "B=" + strings.Repeat("y", MaxFileSize-len(exact)-3) + "\n"
	if len(exact) != MaxFileSize {
		t.Fatalf("test input is %d bytes", len(exact))
	}
	if _, err := Parse(strings.NewReader(exact), Options{}); err != nil {
		t.Fatalf("a 1 MiB file: %v", err)
	}
	_, err := Parse(strings.NewReader(exact+"\n"), Options{Filename: "big.env"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a file over 1 MiB: got %v, want ErrTooLarge", err)
	}
	if got := err.Error(); got != "big.env: file is larger than 1 MiB; refusing to parse it" {
		t.Errorf("error = %q", got)
	}
	// The reader is not read past the limit.
	r := &countingReader{}
	if _, err := Parse(r, Options{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless reader: %v", err)
	}
	if r.n > MaxFileSize+1+64*1024 {
		t.Errorf("read %d bytes from an endless reader", r.n)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	r.n += len(p)
	return len(p), nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	_, err := Parse(failingReader{}, Options{Filename: "x.env"})
	if err == nil || err.Error() != `read "x.env": disk on fire` {
		t.Errorf("got %v", err)
	}
}

func TestPositions(t *testing.T) {
	in := "\ufeff# c\n  export  A=1\nB = \"x\ny\"\n\tC=2 # c\r\nD=\u00e9\u00e9\nE=1"
	res, err := Parse(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A@2:11", "B@3:1", "C@5:2", "D@6:1", "E@7:1"}
	for i, e := range res.Entries {
		if got := e.Name + "@" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column); got != want[i] {
			t.Errorf("entry %d at %s, want %s", i, got, want[i])
		}
	}
	_, err = Parse(strings.NewReader("A=\u00e9\u00e9 ok\nB=\"\u00e9\" x"), Options{})
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 || se.Column != 8 {
		t.Errorf("error at %+v, want 2:8 (byte columns)", se)
	}
}
