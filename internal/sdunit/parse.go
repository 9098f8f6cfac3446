// SPDX-License-Identifier: Apache-2.0

// Package sdunit reads systemd unit files and their drop-ins as systemd does (systemd.unit(5),
// systemd.syntax(7)): sections, continuation lines, comments, the search path, drop-in order and
// the empty assignment that resets a list. It splits and quotes command lines and Environment=
// assignments, and writes the drop-in of `ov systemd cutover`. It never edits a unit file and
// imports nothing from systemd: it works on a mounted image (a root directory) as on the live
// system.
package sdunit

import (
	"bytes"
	"fmt"
	"strings"
)

// Entry is one Key=Value assignment of a unit file or drop-in.
type Entry struct {
	Section string
	Key     string
	Value   string // with continuation lines joined, leading and trailing blanks removed
	File    string
	Line    int // where the assignment starts
}

// MaxFileSize bounds a unit file or drop-in.
const MaxFileSize = 1 << 20

// Parse reads the assignments of one unit file or drop-in, as systemd's config parser does: lines
// starting with # or ; are comments (also inside a continuation), a line ending in a backslash goes
// on with the next one (the backslash becomes a space), [Section] opens a section.
func Parse(file string, b []byte) ([]Entry, error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("parse %s: larger than %d bytes", file, MaxFileSize)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, fmt.Errorf("parse %s: contains a NUL byte", file)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	var out []Entry
	section := ""
	var cont strings.Builder
	contLine := 0
	for i, raw := range lines {
		n := i + 1
		l := strings.TrimSpace(raw)
		if cont.Len() > 0 || contLine > 0 {
			if strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
				continue
			}
		} else if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
			continue
		}
		if oddBackslashes(l) {
			if contLine == 0 {
				contLine = n
			}
			cont.WriteString(strings.TrimRight(l[:len(l)-1], " \t"))
			cont.WriteByte(' ')
			continue
		}
		start := n
		if contLine > 0 {
			cont.WriteString(l)
			l, start = strings.TrimSpace(cont.String()), contLine
			cont.Reset()
			contLine = 0
		}
		if strings.HasPrefix(l, "[") {
			if !strings.HasSuffix(l, "]") || len(l) < 3 {
				return nil, fmt.Errorf("parse %s:%d: invalid section header", file, start)
			}
			section = l[1 : len(l)-1]
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("parse %s:%d: want Key=Value", file, start)
		}
		if section == "" {
			return nil, fmt.Errorf("parse %s:%d: assignment outside a section", file, start)
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("parse %s:%d: empty key", file, start)
		}
		out = append(out, Entry{Section: section, Key: k, Value: strings.TrimSpace(v), File: file, Line: start})
	}
	if contLine > 0 {
		l := strings.TrimSpace(cont.String())
		k, v, ok := strings.Cut(l, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("parse %s:%d: want Key=Value", file, contLine)
		}
		out = append(out, Entry{Section: section, Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), File: file, Line: contLine})
	}
	return out, nil
}

func oddBackslashes(l string) bool {
	n := 0
	for i := len(l) - 1; i >= 0 && l[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}
