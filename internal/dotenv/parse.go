// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// Options controls [Parse].
type Options struct {
	// Format is the syntax of the input; the zero value is [Dotenv].
	Format Format
	// Expand turns on ${VAR}, $VAR, ${VAR:-default}, ${VAR-default},
	// ${VAR:+alt} and ${VAR+alt} in unquoted and double-quoted dotenv
	// values. It is off by default because secrets often contain "$". Only
	// the [Dotenv] format supports it.
	Expand bool
	// Filename is used in errors and warnings only.
	Filename string
	// Env looks up names that expansion does not find earlier in the file.
	// Nil means such names are undefined.
	Env func(name string) (string, bool)
}

// Entry is one variable. Parse sets every field; Write uses Name and Value.
type Entry struct {
	Name   string
	Value  []byte
	Line   int // where the name of the winning assignment starts
	Column int
}

// Result is what Parse found in an accepted file.
type Result struct {
	// Entries has one entry per name, in the order names first appear,
	// each with the value of its last assignment.
	Entries []Entry
	// Warnings are in input order.
	Warnings []Warning
}

// Wipe overwrites every value with zeros (best effort: the garbage collector
// may have copied them).
func (r *Result) Wipe() {
	if r == nil {
		return
	}
	for i := range r.Entries {
		clear(r.Entries[i].Value)
	}
}

// Parse reads one file in opt.Format. It reads at most [MaxFileSize] bytes
// and refuses larger inputs before parsing them.
//
// On any problem in the file it returns an [ErrorList] listing every
// problem it found, in line order (wrapping [ErrTooLarge] for an oversized
// input), and a Result with no entries that holds the warnings found so
// far, so that a refused file can be fixed in one go. An error from r, an
// unknown format or Expand with a format other than [Dotenv] returns a nil
// Result.
func Parse(r io.Reader, opt Options) (*Result, error) {
	if !opt.Format.valid() {
		return nil, fmt.Errorf("parse %s: unknown format %d", displayName(opt.Filename), int(opt.Format))
	}
	if opt.Expand && opt.Format != Dotenv {
		return nil, fmt.Errorf("parse %s: expansion is only supported for the dotenv format", displayName(opt.Filename))
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	defer clear(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", displayName(opt.Filename), err)
	}
	if len(data) > MaxFileSize {
		return &Result{}, ErrorList{{File: opt.Filename, Msg: "file is larger than 1 MiB; refusing to parse it", Err: ErrTooLarge}}
	}
	c := &collector{file: opt.Filename, index: make(map[string]int)}
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return &Result{}, ErrorList{{File: opt.Filename, Line: 1, Column: 1, Msg: "the file is UTF-16; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"}}
	}
	if enc := utf16Guess(data); enc != "" {
		return &Result{}, ErrorList{{File: opt.Filename, Line: 1, Column: 1,
			Msg: "the file looks like " + enc + " without a byte order mark; convert it to UTF-8 (iconv -f " + enc + " -t UTF-8)"}}
	}
	src := bytes.TrimPrefix(data, utf8BOM)
	bom := len(src) < len(data)
	if !c.checkBytes(src) {
		return nil, c.errs
	}
	switch opt.Format {
	case Dotenv:
		parseDotenv(src, opt, c)
	case Systemd:
		parseSystemd(src, bom, c)
	case Docker:
		parseDocker(src, c)
	case JSON:
		parseJSON(src, c)
	}
	sort.SliceStable(c.warns, func(i, j int) bool {
		a, b := c.warns[i], c.warns[j]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	if len(c.errs) > 0 {
		c.wipe()
		sort.SliceStable(c.errs, func(i, j int) bool {
			a, b := c.errs[i], c.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return &Result{Warnings: c.warns}, c.errs
	}
	return &Result{Entries: c.entries, Warnings: c.warns}, nil
}

// utf16Guess returns "UTF-16LE" or "UTF-16BE" when data, which has no byte
// order mark, looks like UTF-16: in its first 256 bytes, at least half of
// the 2-byte units are an ASCII character with a NUL byte after (LE) or
// before (BE) it, and no unit is the other way round or two NULs.
func utf16Guess(data []byte) string {
	n := min(len(data), 256) &^ 1
	if n < 4 {
		return ""
	}
	var le, be, both int // pairs like "A\0", "\0A" and "\0\0"
	for i := 0; i < n; i += 2 {
		switch a, b := data[i], data[i+1]; {
		case a != 0 && b == 0:
			le++
		case a == 0 && b != 0:
			be++
		case a == 0 && b == 0:
			both++
		}
	}
	pairs := n / 2
	switch {
	case both > 0:
	case be == 0 && 2*le >= pairs:
		return "UTF-16LE"
	case le == 0 && 2*be >= pairs:
		return "UTF-16BE"
	}
	return ""
}

func displayName(file string) string {
	if file == "" {
		return "input"
	}
	return fmt.Sprintf("%q", file)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// collector gathers entries, warnings and errors for every format.
type collector struct {
	file    string
	lines   []int // start offset of each line of src, set by setSource
	entries []Entry
	index   map[string]int // name -> index in entries
	first   []int          // line of the first assignment of each entry
	warns   []Warning
	errs    ErrorList
	tooMany bool
}

// setSource records where the lines of src start, for positions.
func (c *collector) setSource(src []byte) {
	c.lines = c.lines[:0]
	c.lines = append(c.lines, 0)
	for i, b := range src {
		if b == '\n' {
			c.lines = append(c.lines, i+1)
		}
	}
}

// pos converts a byte offset into a 1-based line and byte column.
func (c *collector) pos(off int) (line, col int) {
	i := sort.Search(len(c.lines), func(i int) bool { return c.lines[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return i + 1, off - c.lines[i] + 1
}

func (c *collector) warn(off int, code, format string, args ...any) {
	if len(c.warns) >= maxWarnings {
		if len(c.warns) == maxWarnings {
			line, col := c.pos(off)
			c.warns = append(c.warns, Warning{
				File: c.file, Line: line, Column: col, Code: WarnTooMany,
				Message: "too many warnings; the rest are not shown",
			})
		}
		return
	}
	line, col := c.pos(off)
	c.warns = append(c.warns, Warning{File: c.file, Line: line, Column: col, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (c *collector) errorf(off int, format string, args ...any) {
	line, col := c.pos(off)
	c.errorAt(line, col, fmt.Sprintf(format, args...))
}

func (c *collector) errorAt(line, col int, msg string) {
	if c.tooMany {
		return
	}
	if len(c.errs) == maxErrors {
		c.tooMany = true
		c.errs = append(c.errs, &SyntaxError{File: c.file, Line: line, Column: col, Msg: "too many errors"})
		return
	}
	c.errs = append(c.errs, &SyntaxError{File: c.file, Line: line, Column: col, Msg: msg})
}

// checkBytes reports NUL bytes and invalid UTF-8 anywhere in src, which
// refuse the file in every format. It reports true when src is clean.
func (c *collector) checkBytes(src []byte) bool {
	c.setSource(src)
	for i := 0; i < len(src); {
		b := src[i]
		if b < utf8.RuneSelf {
			if b == 0 {
				c.errorf(i, "NUL byte (environment values cannot hold one)")
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n == 1 {
			c.errorf(i, "invalid UTF-8 (if the file uses another encoding, convert it to UTF-8)")
		}
		i += n
	}
	return len(c.errs) == 0
}

// lookup returns the current value of name, if the file has set it.
func (c *collector) lookup(name string) ([]byte, bool) {
	if i, ok := c.index[name]; ok {
		return c.entries[i].Value, true
	}
	return nil, false
}

// add records an assignment whose name has been validated; off is where the
// name starts. The last assignment of a name wins.
func (c *collector) add(name string, value []byte, off int) {
	line, col := c.pos(off)
	if i, ok := c.index[name]; ok {
		e := &c.entries[i]
		c.warn(off, WarnDuplicate, "%q is set again (first on line %d); the last value wins", name, c.first[i])
		clear(e.Value)
		e.Value, e.Line, e.Column = value, line, col
		return
	}
	if why := dangerReason(name); why != "" {
		c.warn(off, WarnDangerous, "%q changes how programs run: %s; import it only if the service needs it", name, why)
	}
	c.index[name] = len(c.entries)
	c.first = append(c.first, line)
	c.entries = append(c.entries, Entry{Name: name, Value: value, Line: line, Column: col})
}

// checkName validates a name that was followed by "=" and reports problems
// at off. strict allows POSIX names only. It returns whether the name is
// usable; an unusable name is never shown in the message.
func (c *collector) checkName(name string, off int, strict bool, why string) bool {
	switch classifyName(name) {
	case namePOSIX:
		return true
	case nameExtended:
		if strict {
			c.errorf(off, "invalid name: %s", why)
			return false
		}
		if isDigit(name[0]) {
			c.warn(off, WarnName, "%q starts with a digit: dotenv libraries accept it and `ov run` passes it on, "+
				"but shells cannot set it and systemd's EnvironmentFile= drops it", name)
		} else {
			c.warn(off, WarnName, "%q has \".\" or \"-\": dotenv libraries accept it and `ov run` passes it on, "+
				"but shells cannot set it and systemd's EnvironmentFile= drops it", name)
		}
		return true
	}
	if name == "" {
		c.errorf(off, "missing name before \"=\"")
		return false
	}
	c.errorf(off, "invalid name: %s", why)
	return false
}

// blankEnds reports whether v starts or ends with a space or a tab.
func blankEnds(v []byte) bool {
	return len(v) > 0 && (isBlank(v[0]) || isBlank(v[len(v)-1]))
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' }

func (c *collector) wipe() {
	for i := range c.entries {
		clear(c.entries[i].Value)
	}
	c.entries = nil
}
