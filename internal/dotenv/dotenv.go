// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// parseDotenv parses the default dialect (see the package documentation).
func parseDotenv(raw []byte, opt Options, c *collector) {
	src, loneCR := normalizeNewlines(raw)
	if len(src) > 0 && len(raw) > 0 && &src[0] != &raw[0] {
		defer clear(src)
	}
	c.setSource(src)
	if loneCR >= 0 {
		c.warn(loneCR, WarnSyntax, "a carriage return without a line feed ends the line here, as in Node's dotenv, "+
			"python-dotenv and Ruby dotenv (docker keeps it in the value)")
	}
	p := &dparser{src: src, opt: opt, c: c}
	p.run()
}

// normalizeNewlines turns CRLF and lone CR into LF. It returns raw itself
// when there is no CR, and the offset (in the result) of the first lone CR,
// or -1.
func normalizeNewlines(raw []byte) ([]byte, int) {
	if bytes.IndexByte(raw, '\r') < 0 {
		return raw, -1
	}
	out := make([]byte, 0, len(raw))
	lone := -1
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		if b != '\r' {
			out = append(out, b)
			continue
		}
		if i+1 < len(raw) && raw[i+1] == '\n' {
			continue // the LF follows
		}
		if lone < 0 {
			lone = len(out)
		}
		out = append(out, '\n')
	}
	return out, lone
}

type dparser struct {
	src []byte
	pos int
	opt Options
	c   *collector
}

func (p *dparser) run() {
	for p.pos < len(p.src) {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return
		}
		switch p.src[p.pos] {
		case '\n':
			p.pos++
		case '#':
			p.pos = p.lineEnd(p.pos)
		default:
			p.statement()
		}
	}
}

// lineEnd returns the offset of the LF ending the line at off, or len(src).
func (p *dparser) lineEnd(off int) int {
	if i := bytes.IndexByte(p.src[off:], '\n'); i >= 0 {
		return off + i
	}
	return len(p.src)
}

// skipSpace skips white space other than LF and returns how many bytes it
// skipped.
func (p *dparser) skipSpace() int {
	start := p.pos
	for p.pos < len(p.src) {
		b := p.src[p.pos]
		if b < utf8.RuneSelf {
			if b == '\n' || !unicode.IsSpace(rune(b)) {
				break
			}
			p.pos++
			continue
		}
		r, n := utf8.DecodeRune(p.src[p.pos:])
		if !unicode.IsSpace(r) {
			break
		}
		p.pos += n
	}
	return p.pos - start
}

const nameRule = `names hold ASCII letters, digits, "_", "." and "-" (and do not start with "." or "-"), at most 255 bytes`

// statement parses one assignment starting at p.pos, which is not blank.
func (p *dparser) statement() {
	start := p.pos
	end := p.lineEnd(start)
	line := p.src[start:end]
	if bytes.Equal(bytes.TrimRightFunc(line, unicode.IsSpace), []byte("---")) {
		p.c.warn(start, WarnSyntax, `YAML document separator "---" ignored (godotenv skips it; other libraries refuse it)`)
		p.pos = end
		return
	}
	exported := false
	if len(line) > 6 && string(line[:6]) == "export" && isBlank(line[6]) {
		exported = true
		p.pos = start + 6
		p.skipSpace()
	}
	nameStart := p.pos
	for p.pos < end && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	nameEnd := p.pos
	name := string(p.src[nameStart:nameEnd])
	p.skipSpace()
	var sep byte
	if p.pos < end {
		sep = p.src[p.pos]
	}
	switch {
	case sep == '=':
	case sep == ':' && name != "":
		p.c.warn(p.pos, WarnSyntax, `":" as the separator (YAML style) is read by godotenv, compose-go, Node's and Ruby dotenv, `+
			`but python-dotenv and docker refuse it`)
	case name != "" && (sep == 0 || sep == '#' && p.pos > nameEnd):
		p.bareName(name, nameStart, exported)
		p.pos = end
		return
	default:
		p.badLine(nameStart, p.pos, end, exported)
		p.pos = end
		return
	}
	ok := p.c.checkName(name, nameStart, false, nameRule)
	p.pos++ // the separator
	blanks := p.skipSpace()
	value, good := p.value(end, blanks > 0)
	if ok && good {
		p.c.add(name, value, nameStart)
	} else {
		clear(value)
	}
}

// bareName handles a line holding a name and no "=".
func (p *dparser) bareName(name string, off int, exported bool) {
	if classifyName(name) == nameInvalid {
		p.c.errorf(off, `not a NAME=VALUE assignment`)
		return
	}
	if exported {
		p.c.warn(off, WarnNoValue, `"export" without "=": skipped (Ruby dotenv fails when the variable is not set above)`)
		return
	}
	p.c.warn(off, WarnNoValue, `line has no "=": skipped (compose-go and docker copy such a variable from their own `+
		`environment, python-dotenv sets no value)`)
}

// badLine reports a line that is not an assignment. at is the first
// character that is neither part of a name nor a separator.
func (p *dparser) badLine(nameStart, at, end int, exported bool) {
	rest := p.src[nameStart:end]
	if i := commentStart(rest, true); i >= 0 {
		rest = rest[:i]
	}
	if exported && bytes.IndexByte(rest, '=') < 0 {
		fields := bytes.Fields(rest)
		all := true
		for _, f := range fields {
			all = all && classifyName(string(f)) != nameInvalid
		}
		if all {
			p.c.warn(nameStart, WarnNoValue, `"export" without "=": skipped (Ruby dotenv fails when the variables are not set above)`)
			return
		}
	}
	if bytes.IndexByte(rest, '=') < 0 {
		p.c.errorf(nameStart, "not a NAME=VALUE assignment")
		return
	}
	if at > nameStart && at < end && isNameByte(p.src[at]) {
		p.c.errorf(at, "invalid name: names cannot contain blanks")
		return
	}
	p.c.errorf(at, "invalid character in name: %s", nameRule)
}

// commentStart returns the index of a "#" that starts a comment in an
// unquoted value v: one preceded by a blank, or at the start when blank
// is true (blanks came before v). It returns -1 if there is none.
func commentStart(v []byte, blank bool) int {
	for i, b := range v {
		if b == '#' && (i == 0 && blank || i > 0 && isBlank(v[i-1])) {
			return i
		}
	}
	return -1
}

// value parses the value starting at p.pos, on the line ending at end, and
// leaves p.pos at the end of its last line. blank reports whether blanks
// came between the separator and p.pos.
func (p *dparser) value(end int, blank bool) ([]byte, bool) {
	if p.pos >= end {
		if blank {
			p.c.warn(p.pos, WarnWhitespace, "the value is only blanks and reads as empty (docker keeps the blanks)")
		}
		p.pos = end
		return []byte{}, true
	}
	switch p.src[p.pos] {
	case '"':
		return p.doubleQuoted()
	case '\'':
		return p.singleQuoted()
	}
	return p.unquoted(end, blank)
}

func (p *dparser) unquoted(end int, blank bool) ([]byte, bool) {
	start := p.pos
	p.pos = end
	raw := p.src[start:end]
	cut := commentStart(raw, blank)
	if cut < 0 {
		cut = len(raw)
	}
	v := bytes.TrimRightFunc(raw[:cut], unicode.IsSpace)
	switch {
	case cut == 0:
		p.c.warn(start, WarnComment, `a value of only a comment is empty here (and in Node's and Ruby dotenv); `+
			`godotenv, compose-go and python-dotenv take the "#..." as the value`)
	case cut == len(raw) && len(v) < len(raw):
		p.c.warn(start+len(v), WarnWhitespace, "blanks after the value are dropped (docker keeps them)")
	}
	if cut > 0 && cut < len(raw) {
		if raw[cut-1] == '\t' {
			p.c.warn(start+cut, WarnComment, `a tab before "#" starts a comment here; compose-go needs a space and keeps the tab and the "#..." in the value`)
		}
	}
	if i := bytes.IndexByte(v, '#'); i >= 0 {
		p.c.warn(start+i, WarnComment, `a "#" without a blank before it is part of the value; Node's and Ruby dotenv `+
			`end the value there`)
	}
	if len(v) > 0 && v[0] == '`' {
		if bytes.IndexByte(raw[1:], '`') < 0 {
			if i := bytes.IndexByte(p.src[end:], '`'); i >= 0 {
				// Node's dotenv reads a value in backticks across lines; every other peer reads
				// the lines that follow as statements of their own.
				p.c.errorf(start, "a backtick that is closed on a later line: only Node's dotenv reads backticks as "+
					"quotes across lines; put the value in double quotes")
				p.pos = p.lineEnd(end + i)
				return nil, false
			}
		}
		p.c.warn(start, WarnBacktick, "backticks are kept as part of the value; Node's dotenv strips them like quotes")
	}
	if i := bytes.IndexByte(v, '\\'); i >= 0 && i < len(v)-1 {
		// A single backslash at the very end reads the same everywhere (Ruby dotenv removes a
		// backslash only when a character follows it).
		p.c.warn(start+i, WarnEscape, "backslashes in unquoted values are kept as written; Ruby dotenv removes them")
	}
	return p.decode(v, modeUnquoted, start)
}

func (p *dparser) doubleQuoted() ([]byte, bool) {
	open := p.pos
	closing := -1
	for i := open + 1; i < len(p.src); i++ {
		if p.src[i] == '\\' {
			i++ // the escaped byte, whatever it is
			continue
		}
		if p.src[i] == '"' {
			closing = i
			break
		}
	}
	if closing < 0 {
		p.c.errorf(open, `unterminated double-quoted value: no closing '"' before the end of the file`)
		p.pos = len(p.src)
		return nil, false
	}
	p.pos = closing + 1
	val, ok := p.decode(p.src[open+1:closing], modeDouble, open)
	if !p.afterQuote() {
		ok = false
	}
	if ok && blankEnds(val) {
		p.c.warn(open, WarnWhitespace, "the quoted value starts or ends with blanks; they are kept")
	}
	return val, ok
}

func (p *dparser) singleQuoted() ([]byte, bool) {
	open := p.pos
	closing := -1
	escaped := false // after an odd number of backslashes
	for i := open + 1; i < len(p.src); i++ {
		switch c := p.src[i]; {
		case c == '\\':
			escaped = !escaped
			continue
		case c == '\'' && !escaped:
			closing = i
		}
		if closing >= 0 {
			break
		}
		escaped = false
	}
	if closing < 0 {
		p.c.errorf(open, `unterminated single-quoted value: no closing "'" before the end of the file `+
			`(a quote after an odd number of backslashes does not close it)`)
		p.pos = len(p.src)
		return nil, false
	}
	inner := p.src[open+1 : closing]
	p.pos = closing + 1
	ok := p.afterQuote()
	if bytes.Contains(inner, []byte(`\'`)) || bytes.Contains(inner, []byte(`\\`)) {
		p.c.warn(open, WarnEscape, `\' and \\ in single quotes are kept as written; python-dotenv decodes them to ' and \, `+
			`compose-go decodes \' to '`)
	}
	if bytes.Contains(inner, []byte("${")) {
		p.c.warn(open, WarnExpansion, "${...} in single quotes is kept literally; python-dotenv expands it even there")
	}
	if ok && blankEnds(inner) {
		p.c.warn(open, WarnWhitespace, "the quoted value starts or ends with blanks; they are kept")
	}
	return bytes.Clone(inner), ok
}

// afterQuote checks the rest of the line after a closing quote: blanks, then
// an optional comment.
func (p *dparser) afterQuote() bool {
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
		return true
	}
	end := p.lineEnd(p.pos)
	at := p.pos
	p.pos = end
	if p.src[at] == '#' {
		p.c.warn(at, WarnComment, "the comment after the quoted value is dropped; systemd's EnvironmentFile= would "+
			"keep it as part of the value")
		return true
	}
	p.c.errorf(at, `unexpected text after the closing quote (quote the whole value, or start a comment with "#")`)
	return false
}
