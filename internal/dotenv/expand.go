// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"strings"
)

type valueMode int

const (
	modeUnquoted valueMode = iota
	modeDouble
)

// Kinds of backslash escapes seen in a double-quoted value, for warnings.
const (
	escNewline = 1 << iota // \n \r
	escCommon              // \t \" \\ \'
	escDollar              // \$
	escOther               // anything else, kept as written
)

// maxExpandDepth bounds nested ${A:-${B:-...}} defaults.
const maxExpandDepth = 16

// decoder turns the raw text of an unquoted or double-quoted value into its
// bytes: it decodes escapes (double quotes only) and, when expansion is on,
// substitutes variables. It records what it saw for warnings.
type decoder struct {
	p         *dparser
	mode      valueMode
	expand    bool
	escapes   int
	refsAt    int   // source offset of the first $NAME, ${ or $digit seen with expansion off, or -1
	commandAt int   // source offset of the first $(, or -1
	undefined []int // source offsets of "$" of undefined variables
	err       string
	errOff    int
}

// srcOff returns the offset in the source of s[0]; every slice the decoder
// sees is a subslice of the parser's source.
func (d *decoder) srcOff(s []byte) int { return cap(d.p.src) - cap(s) }

// decode returns the value of raw, reporting problems at off.
func (p *dparser) decode(raw []byte, mode valueMode, off int) ([]byte, bool) {
	d := decoder{p: p, mode: mode, expand: p.opt.Expand, refsAt: -1, commandAt: -1}
	out := d.run(raw, make([]byte, 0, len(raw)), 0)
	if d.err != "" {
		p.c.errorf(d.errOff, "%s", d.err)
		clear(out)
		return nil, false
	}
	d.report(off)
	return out, true
}

func (d *decoder) run(raw, out []byte, depth int) []byte {
	for i := 0; i < len(raw) && d.err == ""; {
		c := raw[i]
		switch {
		case c == '\\' && i+1 < len(raw):
			n := raw[i+1]
			if d.mode == modeDouble {
				out = d.escape(out, n)
				i += 2
				continue
			}
			if n == '$' && d.expand {
				out = append(out, '$')
				i += 2
				continue
			}
			out = append(out, c)
			i++
		case c == '$':
			var n int
			out, n = d.dollar(raw[i:], out, depth)
			i += n
		default:
			out = append(out, c)
			i++
		}
	}
	return out
}

// escape appends the decoding of a backslash followed by n in double quotes.
func (d *decoder) escape(out []byte, n byte) []byte {
	switch n {
	case 'n':
		d.escapes |= escNewline
		return append(out, '\n')
	case 'r':
		d.escapes |= escNewline
		return append(out, '\r')
	case 't':
		d.escapes |= escCommon
		return append(out, '\t')
	case '"', '\\', '\'':
		d.escapes |= escCommon
		return append(out, n)
	case '$':
		d.escapes |= escDollar
		return append(out, '$')
	}
	d.escapes |= escOther
	return append(out, '\\', n)
}

// dollar handles s, which starts with "$", and returns how much it used.
func (d *decoder) dollar(s, out []byte, depth int) ([]byte, int) {
	if len(s) < 2 {
		return append(out, '$'), 1
	}
	switch n := s[1]; {
	case n == '(':
		if d.commandAt < 0 {
			d.commandAt = d.srcOff(s)
		}
	case n == '{':
		if d.expand {
			return d.braced(s, out, depth)
		}
		d.ref(s)
	case isNameStart(n):
		if !d.expand {
			d.ref(s)
			break
		}
		j := 2
		for j < len(s) && (isNameStart(s[j]) || isDigit(s[j])) {
			j++
		}
		v, ok := d.lookup(string(s[1:j]))
		if !ok {
			d.undefined = append(d.undefined, d.srcOff(s))
		}
		return append(out, v...), j
	case isDigit(n):
		if !d.expand {
			d.ref(s) // godotenv substitutes $1
		}
	}
	return append(out, '$'), 1
}

// ref records a reference at s, which starts with "$", seen with expansion
// off.
func (d *decoder) ref(s []byte) {
	if d.refsAt < 0 {
		d.refsAt = d.srcOff(s)
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// braced expands s, which starts with "${".
func (d *decoder) braced(s, out []byte, depth int) ([]byte, int) {
	if depth >= maxExpandDepth {
		d.err, d.errOff = "${...} defaults nested too deeply", d.srcOff(s)
		return out, len(s)
	}
	end := -1
	level := 1
	for j := 2; j < len(s) && end < 0; j++ {
		switch s[j] {
		case '\\':
			if d.mode == modeDouble || j+1 < len(s) && s[j+1] == '$' {
				j++
			}
		case '$':
			if j+1 < len(s) && s[j+1] == '{' {
				level++
				j++
			}
		case '}':
			if level--; level == 0 {
				end = j
			}
		}
	}
	if end < 0 {
		d.err, d.errOff = `unterminated "${" in the value (expansion is on)`, d.srcOff(s)
		return out, len(s)
	}
	body := s[2:end]
	k := 0
	for k < len(body) && (isNameStart(body[k]) || isDigit(body[k]) || body[k] == '.') {
		k++
	}
	if k == 0 || !isNameStart(body[0]) {
		d.err, d.errOff = `invalid "${...}" in the value: a name must follow "${" (expansion is on)`, d.srcOff(s)
		return out, end + 1
	}
	name := string(body[:k])
	op := body[k:]
	v, set := d.lookup(name)
	switch {
	case len(op) == 0:
		if !set {
			d.undefined = append(d.undefined, d.srcOff(s))
		}
		out = append(out, v...)
	case bytes.HasPrefix(op, []byte(":-")):
		if set && len(v) > 0 {
			out = append(out, v...)
		} else {
			out = d.run(op[2:], out, depth+1)
		}
	case op[0] == '-':
		if set {
			out = append(out, v...)
		} else {
			out = d.run(op[1:], out, depth+1)
		}
	case bytes.HasPrefix(op, []byte(":+")):
		if set && len(v) > 0 {
			out = d.run(op[2:], out, depth+1)
		}
	case op[0] == '+':
		if set {
			out = d.run(op[1:], out, depth+1)
		}
	default:
		d.errOff = d.srcOff(s)
		d.err = `unsupported "${...}" form in the value (expansion is on; supported: ${NAME}, ${NAME:-default}, ` +
			`${NAME-default}, ${NAME:+alt}, ${NAME+alt})`
	}
	return out, end + 1
}

// lookup finds name among the earlier entries of the file, then in
// Options.Env.
func (d *decoder) lookup(name string) ([]byte, bool) {
	if v, ok := d.p.c.lookup(name); ok {
		return v, true
	}
	if d.p.opt.Env != nil {
		if v, ok := d.p.opt.Env(name); ok {
			return []byte(v), true
		}
	}
	return nil, false
}

// report adds the warnings for what the decoder saw.
func (d *decoder) report(off int) {
	c := d.p.c
	if d.escapes != 0 {
		var parts []string
		if d.escapes&escNewline != 0 {
			parts = append(parts, `some Ruby dotenv versions keep \n and \r as written`)
		}
		if d.escapes&escCommon != 0 {
			parts = append(parts, `Node's dotenv keeps \t, \", \\ and \' as written (godotenv and Ruby dotenv read \t as "t")`)
		}
		if d.escapes&escDollar != 0 {
			parts = append(parts, `python-dotenv and Node's dotenv keep \$ as written`)
		}
		if d.escapes&escOther != 0 {
			parts = append(parts, `other backslash sequences are kept as written, but godotenv and Ruby dotenv drop the `+
				`backslash and python-dotenv and compose-go decode some of them (\a, \x41, \u00e9)`)
		}
		c.warn(off, WarnEscape, "backslash escapes in double quotes are decoded here; %s", strings.Join(parts, "; "))
	}
	if d.refsAt >= 0 {
		c.warn(d.refsAt, WarnExpansion, `"$" before a name or "{" is kept literally (expansion is off); godotenv, compose-go `+
			`and Ruby dotenv would substitute a variable there, python-dotenv too for ${...}`)
	}
	if d.commandAt >= 0 {
		c.warn(d.commandAt, WarnCommand, `"$(" is kept literally; Ruby dotenv would run it as a shell command`)
	}
	for _, at := range d.undefined {
		c.warn(at, WarnExpansion, "undefined variable (not set above nor in the environment): it expands to an empty string")
	}
}
