// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"regexp"
	"strings"
)

// Models of how the peer libraries read the files the dotenv writer
// produces: KEY=VALUE lines with unquoted, single- or double-quoted values.
// Each is written by hand from the library's own parser (versions in
// docs/dotenv-dialect.md) and follows it rule for rule on that subset,
// regular expressions included: Go's leftmost-first matching finds the same
// match as the backtracking engines of JavaScript, Python and Ruby. They are
// oracles for TestWriterPeers, never used by the package.

type peerModel struct {
	name string
	read func(src string) map[string]string
}

var peerModels = []peerModel{
	{"node", readNode},
	{"go", func(s string) map[string]string { return readGodotenv(s, true) }},
	{"go-1.5", func(s string) map[string]string { return readGodotenv(s, false) }},
	{"compose", readCompose},
	{"py", readPython},
	{"rb", readRuby},
}

// motdotla/dotenv v17 lib/main.js parseRegex (the default parser).
var nodeLine = regexp.MustCompile(`(?m)(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*` +
	"`(?:\\\\`|[^`])*`" + `|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)`)

func readNode(src string) map[string]string {
	out := map[string]string{}
	src = regexp.MustCompile(`\r\n?`).ReplaceAllString(src, "\n")
	for _, m := range nodeLine.FindAllStringSubmatch(src, -1) {
		v := strings.TrimSpace(m[2])
		q := byte(0)
		if len(v) > 0 {
			q = v[0]
		}
		if len(v) >= 2 && strings.IndexByte("'\"`", v[0]) >= 0 && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if q == '"' {
			v = strings.ReplaceAll(strings.ReplaceAll(v, `\n`, "\n"), `\r`, "\r")
		}
		out[m[1]] = v
	}
	return out
}

// joho/godotenv parser.go: parity is v1.6 (a quote after an even number of
// backslashes closes the value), v1.5.1 skips any quote after a backslash.
// Errors end the parse: what was read so far is returned with a "!error" key.
func readGodotenv(src string, parity bool) map[string]string {
	out := map[string]string{}
	src = strings.ReplaceAll(src, "\r\n", "\n")
	for _, line := range splitStatements(src) {
		key, rest, _ := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" || rest[0] != '\'' && rest[0] != '"' {
			v, _, _ := strings.Cut(rest, "\n")
			if i := strings.Index(v, " #"); i >= 0 {
				v = v[:i]
			}
			out[key] = goExpand(strings.TrimSpace(v), out)
			continue
		}
		q := rest[0]
		closing := -1
		for i := 1; i < len(rest) && closing < 0; i++ {
			if rest[i] != q {
				continue
			}
			n := 0
			for j := i - 1; j >= 0 && rest[j] == '\\'; j-- {
				n++
			}
			if parity && n%2 == 0 || !parity && n == 0 {
				closing = i
			}
		}
		if closing < 0 {
			out["!error"] = "unterminated"
			return out
		}
		v := rest[1:closing]
		if q == '"' {
			v = regexp.MustCompile(`\\.`).ReplaceAllStringFunc(v, func(m string) string {
				switch m {
				case `\n`:
					return "\n"
				case `\r`:
					return "\r"
				}
				return m
			})
			v = goExpand(regexp.MustCompile(`\\([^$])`).ReplaceAllString(v, "$1"), out)
		}
		out[key] = v
	}
	return out
}

var goVar = regexp.MustCompile(`(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?`)

func goExpand(v string, m map[string]string) string {
	return goVar.ReplaceAllStringFunc(v, func(s string) string {
		sm := goVar.FindStringSubmatch(s)
		if sm[1] == `\` || sm[3] == "(" {
			return s[1:]
		}
		if sm[4] != "" {
			return m[sm[4]]
		}
		return s
	})
}

// splitStatements cuts src, which holds only KEY=... statements written by
// Write, at the LF before each statement: a line starting with a name and
// "=". Multi-line quoted values never hold such a line in the test corpus.
func splitStatements(src string) []string {
	var out []string
	for _, l := range strings.SplitAfter(src, "\n") {
		if stmtStart.MatchString(l) || len(out) == 0 {
			out = append(out, l)
		} else {
			out[len(out)-1] += l
		}
	}
	for i := range out {
		out[i] = strings.TrimSuffix(out[i], "\n")
	}
	if len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

var stmtStart = regexp.MustCompile(`^[A-Za-z0-9_.-]+=`)

// compose-spec/compose-go dotenv/parser.go.
func readCompose(src string) map[string]string {
	out := map[string]string{}
	for _, line := range splitStatements(src) {
		key, rest, _ := strings.Cut(line, "=")
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" || rest[0] != '\'' && rest[0] != '"' {
			v, _, _ := strings.Cut(rest, "\n")
			v, _, _ = strings.Cut(v, " #")
			out[key] = composeExpand(strings.TrimRight(v, " \t"), out)
			continue
		}
		q := rest[0]
		var chars []byte
		esc, closed := false, false
		for i := 1; i < len(rest) && !closed; i++ {
			c := rest[i]
			switch {
			case c != q && !esc && c == '\\':
				esc = true
			case c != q:
				if esc {
					chars = append(chars, '\\')
				}
				esc = false
				chars = append(chars, c)
			case esc:
				esc = false
				chars = append(chars, c)
			default:
				closed = true
			}
		}
		if !closed {
			out["!error"] = "unterminated"
			return out
		}
		v := string(chars)
		if q == '"' {
			v = regexp.MustCompile(`(\\(?:[abcfnrtv$"\\]|0\d{0,3}))`).ReplaceAllStringFunc(v, func(m string) string {
				r := map[string]string{`\a`: "\a", `\b`: "\b", `\f`: "\f", `\n`: "\n", `\r`: "\r", `\t`: "\t", `\v`: "\v",
					`\"`: `"`, `\\`: `\`, `\$`: "$$"}
				if x, ok := r[m]; ok {
					return x
				}
				return m
			})
			v = composeExpand(v, out)
		}
		out[key] = v
	}
	return out
}

var composeVar = regexp.MustCompile(`\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\})`)

func composeExpand(v string, m map[string]string) string {
	return composeVar.ReplaceAllStringFunc(v, func(s string) string {
		sm := composeVar.FindStringSubmatch(s)
		switch {
		case sm[1] != "":
			return "$"
		case sm[2] != "":
			return m[sm[2]]
		}
		return m[sm[3]]
	})
}

// theskumar/python-dotenv parser.py and main.py (dotenv_values with the
// default interpolate=True). A statement that does not parse is skipped
// up to the end of its line, as python-dotenv does (it logs a warning).
var (
	pySingle  = regexp.MustCompile(`^'((?:\\'|[^'])*)'`)
	pyDouble  = regexp.MustCompile(`^"((?:\\"|[^"])*)"`)
	pyEnd     = regexp.MustCompile(`^[^\S\r\n]*(?:#[^\r\n]*)?[^\S\r\n]*(?:\r\n|\n|\r|$)`)
	pyKey     = regexp.MustCompile(`^\s*(?:export[^\S\r\n]+)?([^=#\s]+)[^\S\r\n]*=[^\S\r\n]*`)
	pyEsc2    = regexp.MustCompile(`\\[\\'"abfnrtv]`)
	pyEsc1    = regexp.MustCompile(`\\[\\']`)
	pyVar     = regexp.MustCompile(`\$\{([^}:]*)(?::-([^}]*))?\}`)
	pyRest    = regexp.MustCompile(`^[^\r\n]*(?:\r|\n|\r\n)?`)
	pyComment = regexp.MustCompile(`\s+#.*`)
)

func readPython(src string) map[string]string {
	out := map[string]string{}
	for strings.TrimSpace(src) != "" {
		m := pyKey.FindStringSubmatchIndex(src)
		if m == nil {
			src = src[len(pyRest.FindString(src)):]
			continue
		}
		key, rest := src[m[2]:m[3]], src[m[1]:]
		var v string
		var n int
		switch {
		case strings.HasPrefix(rest, "'"):
			if sm := pySingle.FindStringSubmatch(rest); sm != nil {
				v, n = pyDecode(pyEsc1, sm[1]), len(sm[0])
			} else {
				n = -1
			}
		case strings.HasPrefix(rest, `"`):
			if sm := pyDouble.FindStringSubmatch(rest); sm != nil {
				v, n = pyDecode(pyEsc2, sm[1]), len(sm[0])
			} else {
				n = -1
			}
		default:
			line, _, _ := strings.Cut(rest, "\n")
			n = len(line)
			v = strings.TrimRight(pyComment.ReplaceAllString(line, ""), " \t\r\f\v")
		}
		if n >= 0 {
			if e := pyEnd.FindString(rest[n:]); e != "" || n == len(rest) {
				out[key] = pyVar.ReplaceAllStringFunc(v, func(s string) string {
					sm := pyVar.FindStringSubmatch(s)
					if x, ok := out[sm[1]]; ok && x != "" {
						return x
					}
					return sm[2]
				})
				src = rest[n+len(e):]
				continue
			}
		}
		src = src[m[0]:]
		src = src[len(pyRest.FindString(src)):]
	}
	return out
}

func pyDecode(re *regexp.Regexp, s string) string {
	return re.ReplaceAllStringFunc(s, func(m string) string {
		r := map[byte]string{'\\': `\`, '\'': "'", '"': `"`, 'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
		return r[m[1]]
	})
}

// bkeepers/dotenv 3.x lib/dotenv/parser.rb and substitutions (default
// line break mode, which keeps \n in double quotes as written).
var rbLine = regexp.MustCompile(`(?m)(?:^|\A)\s*(export\s+)?([\w.]+)(?:(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\n]+)?)?\s*(?:#.*)?(?:$|\z)`)
var rbVar = regexp.MustCompile(`(?i)(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?`)

func readRuby(src string) map[string]string {
	out := map[string]string{}
	src = regexp.MustCompile(`\r\n?`).ReplaceAllString(src, "\n")
	for _, m := range rbLine.FindAllStringSubmatch(src, -1) {
		v := strings.TrimSpace(m[3])
		q := byte(0)
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			q = v[0]
			v = v[1 : len(v)-1]
		}
		if q == '"' {
			v = strings.ReplaceAll(strings.ReplaceAll(v, `\n`, `\\n`), `\r`, `\\r`)
		}
		if q != '\'' {
			v = regexp.MustCompile(`\\([^$])`).ReplaceAllString(v, "$1")
			v = rbVar.ReplaceAllStringFunc(v, func(s string) string {
				sm := rbVar.FindStringSubmatch(s)
				switch {
				case sm[1] == `\`:
					return s[1:]
				case sm[3] == "(":
					return s // a command substitution: not in the corpus
				case sm[4] != "":
					return out[sm[4]]
				}
				return s
			})
		}
		out[m[2]] = v
	}
	return out
}
