// SPDX-License-Identifier: Apache-2.0

package dotenv

import "strings"

// systemd's character classes (src/basic/string-util.h, escape.h).
const (
	sdWhitespace = " \t\n\r"
	sdNewline    = "\n\r"
	sdComments   = "#;"
	sdShellEsc   = "\"\\`$"
)

type sdState int

const (
	sdPreKey sdState = iota
	sdKey
	sdPreValue
	sdValue
	sdValueEscape
	sdSingleQuote
	sdDoubleQuote
	sdDoubleQuoteEscape
	sdComment
	sdCommentEscape
)

// parseSystemd follows systemd's parse_env_file_internal() (systemd v254
// and later) byte for byte, then validates what it would pass on: names must
// be POSIX names (systemd drops the others when it starts the service), and
// an unterminated quote, which systemd takes to the end of the file, is an
// error here. bom reports that a UTF-8 byte order mark preceded src: systemd
// reads it as part of the first name on the line.
func parseSystemd(src []byte, bom bool, c *collector) {
	var (
		state        = sdPreKey
		key, value   []byte
		keyOff       int
		quoteOff     = -1 // offset of the quote still open, if any
		lastKeyBlank = -1
		lastValBlank = -1
		hashOff      = -1 // a "#" after a blank, which dotenv would read as a comment
		crInQuote    = -1
		quotedOrEsc  bool // leading/trailing blanks can only come from quotes or escapes
	)
	in := func(b byte, set string) bool { return strings.IndexByte(set, b) >= 0 }
	push := func() {
		if lastKeyBlank >= 0 {
			key = key[:lastKeyBlank]
		}
		name := string(key)
		ok := true
		if line, _ := c.pos(keyOff); bom && line == 1 {
			c.errorf(keyOff, "the file starts with a byte order mark, which systemd reads as part of this name "+
				"and so ignores the assignment; remove the byte order mark")
			ok = false
		} else if classifyName(name) != namePOSIX {
			why := "systemd accepts only names made of letters, digits and \"_\", not starting with a digit, " +
				"and ignores this assignment"
			if strings.HasPrefix(name, "export ") || strings.HasPrefix(name, "export\t") {
				why = "systemd does not understand \"export\" and ignores this assignment; remove \"export\""
			}
			ok = c.checkName(name, keyOff, true, why)
		}
		if value == nil {
			value = []byte{}
		}
		if ok {
			if hashOff >= 0 {
				c.warn(hashOff, WarnComment, `systemd has no inline comments: the "#" and what follows are part of `+
					`the value (dotenv libraries would drop them)`)
			}
			if crInQuote >= 0 {
				c.warn(crInQuote, WarnSyntax, "a carriage return inside quotes is kept in the value, as systemd does "+
					"(dotenv libraries turn CRLF into LF)")
			}
			if quotedOrEsc && blankEnds(value) {
				c.warn(keyOff, WarnWhitespace, "the value starts or ends with quoted or escaped blanks; they are kept")
			}
			c.add(name, value, keyOff)
		} else {
			clear(value)
		}
		key, value = nil, nil
		hashOff, crInQuote, quotedOrEsc = -1, -1, false
	}
	noValue := func() {
		c.warn(keyOff, WarnNoValue, `line has no "=": systemd ignores it`)
		key = nil
	}
	quoted := func(i int) {
		quoteOff = i
		quotedOrEsc = true
	}

	for i := 0; i < len(src); i++ {
		ch := src[i]
		switch state {
		case sdPreKey:
			if in(ch, sdComments) {
				state = sdComment
			} else if !in(ch, sdWhitespace) {
				state = sdKey
				keyOff, lastKeyBlank = i, -1
				key = append(key[:0], ch)
			}
		case sdKey:
			switch {
			case in(ch, sdNewline):
				state = sdPreKey
				noValue()
			case ch == '=':
				state = sdPreValue
				lastValBlank = -1
				value = nil
			default:
				if !in(ch, sdWhitespace) {
					lastKeyBlank = -1
				} else if lastKeyBlank < 0 {
					lastKeyBlank = len(key)
				}
				key = append(key, ch)
			}
		case sdPreValue:
			switch {
			case in(ch, sdNewline):
				state = sdPreKey
				push()
			case ch == '\'':
				state = sdSingleQuote
				quoted(i)
			case ch == '"':
				state = sdDoubleQuote
				quoted(i)
			case ch == '\\':
				state = sdValueEscape
				quotedOrEsc = true
			case !in(ch, sdWhitespace):
				state = sdValue
				if ch == '#' && hashOff < 0 && i > 0 && in(src[i-1], sdWhitespace) {
					hashOff = i
				}
				value = append(value, ch)
			}
		case sdValue:
			switch {
			case in(ch, sdNewline):
				state = sdPreKey
				if lastValBlank >= 0 {
					value = value[:lastValBlank]
				}
				push()
			case ch == '\\':
				state = sdValueEscape
				quotedOrEsc = true
				lastValBlank = -1
			default:
				if !in(ch, sdWhitespace) {
					lastValBlank = -1
				} else if lastValBlank < 0 {
					lastValBlank = len(value)
				}
				if ch == '#' && hashOff < 0 && in(src[i-1], sdWhitespace) {
					hashOff = i
				}
				value = append(value, ch)
			}
		case sdValueEscape:
			state = sdValue
			if !in(ch, sdNewline) {
				value = append(value, ch) // an escaped newline is a line continuation
			}
		case sdSingleQuote:
			if ch == '\'' {
				state = sdPreValue
				quoteOff = -1
			} else {
				if ch == '\r' && crInQuote < 0 {
					crInQuote = i
				}
				value = append(value, ch)
			}
		case sdDoubleQuote:
			switch ch {
			case '"':
				state = sdPreValue
				quoteOff = -1
			case '\\':
				state = sdDoubleQuoteEscape
			default:
				if ch == '\r' && crInQuote < 0 {
					crInQuote = i
				}
				value = append(value, ch)
			}
		case sdDoubleQuoteEscape:
			state = sdDoubleQuote
			switch {
			case in(ch, sdShellEsc):
				value = append(value, ch)
			case ch != '\n':
				value = append(value, '\\', ch) // kept, as the shell does
			}
		case sdComment:
			if ch == '\\' {
				state = sdCommentEscape
			} else if in(ch, sdNewline) {
				state = sdPreKey
			}
		case sdCommentEscape:
			// Since v254 a backslash does not continue a comment line.
			if in(ch, sdNewline) {
				state = sdPreKey
			} else {
				state = sdComment
			}
		}
	}

	switch state {
	case sdKey:
		noValue()
	case sdSingleQuote, sdDoubleQuote, sdDoubleQuoteEscape:
		q := "double"
		if state == sdSingleQuote {
			q = "single"
		}
		c.errorf(quoteOff, "unterminated %s-quoted value: no closing quote before the end of the file "+
			"(systemd would take the rest of the file as the value)", q)
		clear(value)
	case sdValue:
		if lastValBlank >= 0 {
			value = value[:lastValBlank]
		}
		push()
	case sdPreValue, sdValueEscape:
		push()
	}
}
