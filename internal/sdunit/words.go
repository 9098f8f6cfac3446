// SPDX-License-Identifier: Apache-2.0

package sdunit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Word is one word of a command line or of Environment=, as systemd's extract_first_word reads it
// with quote removal and C unescaping: Text is the result, Raw the text as written in the file
// (so it can be written back exactly, specifiers and $VARIABLES untouched).
type Word struct {
	Text string
	Raw  string
}

// SplitWords splits s into words: blanks separate words; "double" and 'single' quotes may appear
// anywhere in a word and group blanks; a backslash starts a C escape (\n \t \\ \" \' \s \xNN \NNN
// \uNNNN \UNNNNNNNN ...) inside and outside quotes. An unterminated quote or an unknown escape is
// an error, as systemd ignores such a line.
func SplitWords(s string) ([]Word, error) {
	var out []Word
	i := 0
	for {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		start := i
		var b strings.Builder
		var quote byte
		for i < len(s) {
			c := s[i]
			if quote == 0 && isBlank(c) {
				break
			}
			switch {
			case c == '\\':
				r, n, err := unescape(s[i:])
				if err != nil {
					return nil, fmt.Errorf("split %q: %w", s, err)
				}
				b.WriteString(r)
				i += n
				continue
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			default:
				b.WriteByte(c)
			}
			i++
		}
		if quote != 0 {
			return nil, fmt.Errorf("split %q: unterminated %c quote", s, quote)
		}
		out = append(out, Word{Text: b.String(), Raw: s[start:i]})
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

var errEscape = errors.New("invalid escape")

// unescape decodes the escape at the start of s (s[0] == '\\') and returns it and its length.
func unescape(s string) (string, int, error) {
	if len(s) < 2 {
		return "", 0, fmt.Errorf("%w: backslash at the end", errEscape)
	}
	switch c := s[1]; c {
	case 'a':
		return "\a", 2, nil
	case 'b':
		return "\b", 2, nil
	case 'f':
		return "\f", 2, nil
	case 'n':
		return "\n", 2, nil
	case 'r':
		return "\r", 2, nil
	case 't':
		return "\t", 2, nil
	case 'v':
		return "\v", 2, nil
	case 's':
		return " ", 2, nil
	case '\\', '"', '\'', ' ', ';':
		return string(c), 2, nil
	case 'x':
		if len(s) < 4 {
			return "", 0, fmt.Errorf("%w: short \\x", errEscape)
		}
		v, err := strconv.ParseUint(s[2:4], 16, 8)
		if err != nil || v == 0 {
			return "", 0, fmt.Errorf("%w: \\x%s", errEscape, s[2:4])
		}
		return string([]byte{byte(v)}), 4, nil
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if len(s) < 2+n {
			return "", 0, fmt.Errorf("%w: short \\%c", errEscape, c)
		}
		v, err := strconv.ParseUint(s[2:2+n], 16, 32)
		if err != nil || v == 0 || !utf8.ValidRune(rune(v)) {
			return "", 0, fmt.Errorf("%w: \\%c%s", errEscape, c, s[2:2+n])
		}
		return string(rune(v)), 2 + n, nil
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if len(s) < 4 {
			return "", 0, fmt.Errorf("%w: short octal escape", errEscape)
		}
		v, err := strconv.ParseUint(s[1:4], 8, 8)
		if err != nil || v == 0 {
			return "", 0, fmt.Errorf("%w: \\%s", errEscape, s[1:4])
		}
		return string([]byte{byte(v)}), 4, nil
	}
	return "", 0, fmt.Errorf("%w: \\%c", errEscape, s[1])
}

// Quote writes w as one word that systemd reads back as w in a command line or Environment=:
// specifiers (%) and variables ($) are escaped, so nothing is expanded.
func Quote(w string) string {
	safe := w != ""
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-+=:,./@", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return w
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range w {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Exec is one command line of ExecStart= (or another Exec*= setting).
type Exec struct {
	Prefix  string // the special characters before the path: any of "-@:+!" ("!!" too)
	Command string // the rest as written: path and arguments, quoting, specifiers and $VARS kept
	Argv    []Word
	Entry   Entry
}

// ParseExec splits an Exec*= value into its prefix and words. A ";" word (several commands on one
// line) is refused: systemd has not accepted it in ExecStart= for years.
func ParseExec(e Entry) (*Exec, error) {
	v := e.Value
	i := 0
	for i < len(v) && strings.IndexByte("-@:+!|", v[i]) >= 0 {
		i++
	}
	x := &Exec{Prefix: v[:i], Command: strings.TrimSpace(v[i:]), Entry: e}
	words, err := SplitWords(x.Command)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %s=: %w", e.File, e.Line, e.Key, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s:%d: %s= has no command", e.File, e.Line, e.Key)
	}
	for _, w := range words {
		if w.Raw == ";" {
			return nil, fmt.Errorf("%s:%d: %s= holds several commands separated by \";\"; give each its own line", e.File, e.Line, e.Key)
		}
	}
	x.Argv = words
	return x, nil
}

// VarRefs returns the names of the environment variables that systemd substitutes in the command
// ($NAME as a word, ${NAME} anywhere; $$ is a literal $). A ":" prefix turns substitution off.
func (x *Exec) VarRefs() []string {
	if strings.Contains(x.Prefix, ":") {
		return nil
	}
	var out []string
	s := x.Command
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			if end := strings.IndexByte(s[i+2:], '}'); end > 0 {
				out = append(out, s[i+2:i+2+end])
				i += 2 + end
			}
			continue
		}
		j := i + 1
		for j < len(s) && isNameByte(s[j], j == i+1) {
			j++
		}
		if j > i+1 {
			out = append(out, s[i+1:j])
			i = j - 1
		}
	}
	return out
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || !first && c >= '0' && c <= '9'
}

// Assignment is one NAME=VALUE word of Environment=.
type Assignment struct {
	Name  string
	Value string // unquoted and unescaped; specifiers not expanded
	Raw   string // as written, to write it back unchanged
	Entry Entry
}

// ParseEnvironment splits an Environment= value into assignments. Words without "=" or with an
// invalid name are skipped, as systemd skips them.
func ParseEnvironment(e Entry) ([]Assignment, error) {
	words, err := SplitWords(e.Value)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: Environment=: %w", e.File, e.Line, err)
	}
	var out []Assignment
	for _, w := range words {
		k, v, ok := strings.Cut(w.Text, "=")
		if !ok || !validName(k) {
			continue
		}
		out = append(out, Assignment{Name: k, Value: v, Raw: w.Raw, Entry: e})
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// Specifiers are the values of the unit specifiers this package expands (%n, %N, %p, %i, %I, %H,
// %%); any other specifier is reported as unknown rather than guessed.
type Specifiers map[byte]string

// SpecifiersFor returns the specifiers of a unit name (hostname as given).
func SpecifiersFor(unit, hostname string) Specifiers {
	base, _, _ := strings.Cut(unit, ".")
	if i := strings.LastIndexByte(unit, '.'); i >= 0 {
		base = unit[:i]
	}
	prefix, inst, _ := strings.Cut(base, "@")
	return Specifiers{'n': unit, 'N': base, 'p': prefix, 'i': inst, 'I': inst, 'H': hostname, 'l': strings.SplitN(hostname, ".", 2)[0]}
}

// ErrUnknownSpecifier is returned for a specifier Expand does not know.
var ErrUnknownSpecifier = errors.New("unknown specifier")

// Expand replaces the specifiers in s.
func (sp Specifiers) Expand(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%w: %% at the end", ErrUnknownSpecifier)
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := sp[s[i]]
		if !ok {
			return "", fmt.Errorf("%w %%%c", ErrUnknownSpecifier, s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
