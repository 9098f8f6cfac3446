// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// Write writes entries, in order, in format f: one NAME=VALUE line each for
// [Dotenv], [Systemd] and [Docker], one object for [JSON]. Only Name and
// Value are used.
//
// Every entry is checked before anything is written, so on error nothing
// is. A name the format cannot hold wraps [ErrInvalidName]; a value it
// cannot hold (a NUL byte or invalid UTF-8 in any format; a line break, a
// trailing carriage return or a line over 64 KiB in a docker env-file)
// wraps [ErrUnrepresentable]. Errors name the entry, never its value, and
// a name given twice is refused.
//
// What is written reads back with [Parse] (expansion off) to the same
// entries. The dotenv writer leaves plain values unquoted (also a plain value
// followed by one backslash), single-quotes values without "'", line breaks
// or a trailing backslash, and double-quotes the rest with \\, \", \n, \r
// and \$ escapes. Plain and single-quoted values read back the same in every
// peer library; docs/dotenv-dialect.md lists which peers misread the
// double-quoted ones (TestWriterPeers checks these claims).
func Write(w io.Writer, entries []Entry, f Format) error {
	if !f.valid() {
		return fmt.Errorf("write: unknown format %d", int(f))
	}
	if err := checkEntries(entries, f); err != nil {
		return err
	}
	var buf bytes.Buffer
	defer func() { clear(buf.Bytes()) }()
	if f == JSON {
		writeJSON(&buf, entries)
	} else {
		for _, e := range entries {
			buf.WriteString(e.Name)
			buf.WriteByte('=')
			switch f {
			case Dotenv:
				quoteDotenv(&buf, e.Value)
			case Systemd:
				quoteSystemd(&buf, e.Value)
			case Docker:
				buf.Write(e.Value)
			}
			buf.WriteByte('\n')
		}
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write %s file: %w", f, err)
	}
	return nil
}

func checkEntries(entries []Entry, f Format) error {
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		bad := func(sentinel error, why string) error {
			return fmt.Errorf("write %q as %s: %w: %s", e.Name, f, sentinel, why)
		}
		switch classifyName(e.Name) {
		case nameInvalid:
			return fmt.Errorf("write %q as %s: %w: %s", e.Name, f, ErrInvalidName, nameRule)
		case nameExtended:
			if f == Systemd {
				return bad(ErrInvalidName, `systemd drops names with "." or "-" and names starting with a digit`)
			}
		}
		if seen[e.Name] {
			return bad(ErrInvalidName, "the name is given twice")
		}
		seen[e.Name] = true
		v := e.Value
		switch {
		case bytes.IndexByte(v, 0) >= 0:
			return bad(ErrUnrepresentable, "the value contains a NUL byte")
		case !utf8.Valid(v):
			return bad(ErrUnrepresentable, "the value is not valid UTF-8")
		}
		if f != Docker {
			continue
		}
		switch {
		case bytes.IndexByte(v, '\n') >= 0:
			return bad(ErrUnrepresentable, "docker env-files cannot hold a line break")
		case len(v) > 0 && v[len(v)-1] == '\r':
			return bad(ErrUnrepresentable, "docker drops a carriage return at the end of a line")
		case len(e.Name)+1+len(v) > dockerMaxLine:
			return bad(ErrUnrepresentable, "docker cannot read lines longer than 64 KiB")
		}
	}
	return nil
}

// isPlain reports whether v can be written unquoted in every format: it is
// not empty and holds only characters that no reader treats specially.
func isPlain(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case bytes.IndexByte([]byte("_./:@%+,=-"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

func quoteDotenv(buf *bytes.Buffer, v []byte) {
	switch {
	case len(v) == 0:
	case isPlain(v):
		buf.Write(v)
	case v[len(v)-1] == '\\' && bytes.IndexByte(v, '\\') == len(v)-1 && (len(v) == 1 || isPlain(v[:len(v)-1])):
		// A quote right after a backslash closes no value in godotenv 1.5 and compose-go, and
		// python-dotenv reads on to the next quote of the file; unquoted, every peer reads "a\"
		// the same (Ruby dotenv removes a backslash only when a character follows it).
		buf.Write(v)
	case !bytes.ContainsAny(v, "'\n\r") && v[len(v)-1] != '\\':
		buf.WriteByte('\'')
		buf.Write(v)
		buf.WriteByte('\'')
	default:
		buf.WriteByte('"')
		for i, c := range v {
			switch c {
			case '\\', '"':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '$':
				// Escape only where godotenv, compose-go or Ruby dotenv would
				// otherwise substitute; a lone "$" reads the same everywhere.
				if i+1 < len(v) && (isNameStart(v[i+1]) || isDigit(v[i+1]) || v[i+1] == '{' || v[i+1] == '(') {
					buf.WriteByte('\\')
				}
				buf.WriteByte(c)
			default:
				buf.WriteByte(c)
			}
		}
		buf.WriteByte('"')
	}
}

// quoteSystemd double-quotes v the way systemd's parser reads it back:
// inside double quotes it unescapes \" \\ \` and \$ only, and keeps line
// breaks as they are.
func quoteSystemd(buf *bytes.Buffer, v []byte) {
	if len(v) == 0 || isPlain(v) {
		buf.Write(v)
		return
	}
	buf.WriteByte('"')
	for _, c := range v {
		if bytes.IndexByte([]byte(sdShellEsc), c) >= 0 {
			buf.WriteByte('\\')
		}
		buf.WriteByte(c)
	}
	buf.WriteByte('"')
}

func writeJSON(buf *bytes.Buffer, entries []Entry) {
	if len(entries) == 0 {
		buf.WriteString("{}\n")
		return
	}
	buf.WriteString("{\n")
	for i, e := range entries {
		buf.WriteString("  ")
		jsonString(buf, []byte(e.Name))
		buf.WriteString(": ")
		jsonString(buf, e.Value)
		if i < len(entries)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("}\n")
}

// jsonString writes v, which is valid UTF-8, as a JSON string.
func jsonString(buf *bytes.Buffer, v []byte) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			buf.WriteByte('\\')
			buf.WriteByte(c)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}
