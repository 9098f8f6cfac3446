// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"unicode"
)

// dockerMaxLine is the longest line docker's env-file reader (a
// bufio.Scanner with its default 64 KiB buffer) can read.
const dockerMaxLine = 64*1024 - 1

// parseDocker follows the docker CLI's env-file reader (opts/envfile.go,
// kvfile): lines split at LF with one trailing CR dropped, leading white
// space trimmed, "#" lines skipped, the name before the first "=" and the
// value after it taken exactly as written. A name alone means "copy it from
// the environment", which cannot be imported and is skipped with a warning.
func parseDocker(src []byte, c *collector) {
	for off := 0; off < len(src); {
		end := len(src)
		if i := bytes.IndexByte(src[off:], '\n'); i >= 0 {
			end = off + i
		}
		dockerLine(src, off, end, c)
		off = end + 1
	}
}

func dockerLine(src []byte, start, end int, c *collector) {
	raw := src[start:end]
	if len(raw) > dockerMaxLine {
		c.errorf(start, "line is longer than 64 KiB; docker cannot read this file")
		return
	}
	raw = bytes.TrimSuffix(raw, []byte{'\r'})
	line := bytes.TrimLeftFunc(raw, unicode.IsSpace)
	off := start + len(raw) - len(line)
	if len(line) == 0 || line[0] == '#' {
		return
	}
	name, value, hasValue := bytes.Cut(line, []byte{'='})
	if bytes.ContainsAny(name, " \t") {
		c.errorf(off, "invalid name: names cannot contain blanks (docker refuses this line)")
		return
	}
	if len(name) == 0 {
		c.errorf(off, `missing name before "="`)
		return
	}
	if !hasValue {
		if classifyName(string(name)) == nameInvalid {
			c.errorf(off, "not a NAME=VALUE assignment")
		} else {
			c.warn(off, WarnNoValue, `line has no "=": docker copies this variable from the environment of `+
				"`docker run`, so there is no value to import; skipped")
		}
		return
	}
	if !c.checkName(string(name), off, false, nameRule) {
		return
	}
	valOff := off + len(name) + 1
	if blankEnds(value) {
		c.warn(valOff, WarnWhitespace, "the value starts or ends with blanks; docker keeps them, dotenv libraries drop them")
	}
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		c.warn(valOff, WarnQuote, "docker keeps the quotes as part of the value; dotenv libraries strip them")
	}
	if i := commentStart(value, false); i >= 0 {
		c.warn(valOff+i, WarnComment, `docker has no inline comments: the "#" and what follows are part of the value`)
	}
	c.add(string(name), bytes.Clone(value), off)
}
