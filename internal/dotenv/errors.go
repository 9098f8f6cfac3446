// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxFileSize is the largest input, in bytes, that [Parse] accepts.
const MaxFileSize = 1 << 20

// maxErrors and maxWarnings cap what one file reports.
const (
	maxErrors   = 50
	maxWarnings = 1000
)

var (
	// ErrTooLarge is wrapped by the error for an input over [MaxFileSize].
	ErrTooLarge = errors.New("file is larger than 1 MiB")
	// ErrUnknownFormat is wrapped by [ParseFormat] for an unknown name.
	ErrUnknownFormat = errors.New("unknown format")
	// ErrInvalidName is wrapped by [Write] for a name the format cannot hold.
	ErrInvalidName = errors.New("invalid name")
	// ErrUnrepresentable is wrapped by [Write] for a value the format cannot
	// hold (a newline in a docker env-file, a NUL byte anywhere, ...).
	ErrUnrepresentable = errors.New("value cannot be represented")
)

// SyntaxError is one problem in an input file. It never holds a value.
type SyntaxError struct {
	File   string // as given in [Options.Filename]; may be empty
	Line   int    // 1-based; 0 when the problem is about the whole file
	Column int    // 1-based byte column; 0 when unknown
	Msg    string
	Err    error // a sentinel such as [ErrTooLarge], or nil
}

func (e *SyntaxError) Error() string {
	return position(e.File, e.Line, e.Column) + e.Msg
}

// Unwrap returns the sentinel the error wraps, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

// position formats "file:line:col: ", leaving out what is unknown.
func position(file string, line, col int) string {
	var b strings.Builder
	b.WriteString(file)
	if line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(line))
		if col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	return b.String()
}

// ErrorList is every problem found in one file, in input order. [Parse]
// returns it (as an error) whenever the file is refused. errors.As finds a
// [*SyntaxError] in it and errors.Is finds the sentinels its errors wrap.
type ErrorList []*SyntaxError

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	case 2:
		return l[0].Error() + " (and 1 more error)"
	}
	return fmt.Sprintf("%s (and %d more errors)", l[0].Error(), len(l)-1)
}

// Unwrap returns the errors of the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Warning codes. A [Warning] has exactly one; callers may group or filter on
// them, and the set may grow.
const (
	WarnDuplicate  = "duplicate"      // a name set twice; the last value wins
	WarnDangerous  = "dangerous-name" // a name that changes how programs load or run
	WarnName       = "name"           // a name with "." or "-", which shells and systemd refuse
	WarnNoValue    = "no-value"       // a line without "=" was skipped
	WarnComment    = "comment"        // a "#" that peers read differently
	WarnWhitespace = "whitespace"     // leading or trailing blanks kept or dropped
	WarnEscape     = "escape"         // backslash sequences that peers decode differently
	WarnExpansion  = "expansion"      // $VAR / ${VAR}: kept literally, or undefined
	WarnCommand    = "command"        // $(...) kept literally
	WarnBacktick   = "backtick"       // a value in backticks kept literally
	WarnQuote      = "quote"          // quotes kept as part of a docker value
	WarnSyntax     = "syntax"         // accepted syntax that some peers reject
	WarnTooMany    = "too-many"       // the last warning: the rest were dropped
)

// Warning is something in an accepted file that another reader of the same
// file may have understood differently. It never holds a value.
type Warning struct {
	File    string
	Line    int
	Column  int
	Code    string // one of the Warn constants
	Message string
}

// String formats the warning as "file:line:col: message".
func (w Warning) String() string {
	return position(w.File, w.Line, w.Column) + w.Message
}
