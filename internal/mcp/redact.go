// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"unicode/utf8"
)

// MinRedactLen is the length below which a value cannot be redacted
// meaningfully: a value shorter than this is still redacted where its exact
// bytes appear, but none of its encoded forms are, and [Redactor.Short] names
// it so that the caller can warn that it may be guessable from the output.
const MinRedactLen = 4

// minLineLen is the shortest line of a multi-line value that is redacted on
// its own (the lines of a PEM key are 64 bytes).
const minLineLen = 8

// windowLen and maxWindowed: runs of windowLen bytes of the first maxWindowed bytes of a value are
// redacted on their own (see [NewRedactor]). Every value a process environment can reasonably hold
// fits: a 377-byte token leaked through xxd when only values up to 256 bytes were cut up.
const (
	windowLen   = 8
	maxWindowed = 64 << 10
)

// maxJSONDepth bounds how many times a value is JSON-unescaped to find the
// forms that JSON encoding would turn back into it (see [NewRedactor]).
const maxJSONDepth = 3

// A view is the output seen through one decoding. A pattern is searched for in
// the views where its form can appear, and a match is mapped back to the bytes
// of the output it came from.
type view uint8

const (
	viewRaw         view = iota // the output as it is
	viewSquash                  // with spaces, tabs and newlines removed: wrapped base64 and hex, folded tokens
	viewPercent                 // with %XX decoded (either case): any URL encoding
	viewPercentPlus             // with %XX decoded and '+' read as a space: form encoding
	viewJSON                    // with JSON string escapes decoded: \n, \", \/, \uXXXX (and surrogate pairs)
	numViews
)

// Redactor replaces every occurrence of a set of secret values, and of their
// common encodings, with "[redacted:NAME]". Build one with [NewRedactor] for
// the values injected into one command, use it on that command's output, and
// Wipe it: it holds copies of the values.
//
// For a value v of at least [MinRedactLen] bytes it finds:
//   - v itself, v without surrounding whitespace, and v with invalid UTF-8
//     replaced by U+FFFD;
//   - each line of a multi-line v (a PEM key) that is at least 8 bytes long;
//   - the exact output of QueryEscape, PathEscape, JavaScript's
//     encodeURIComponent, Python's quote(v, safe="") and quote_plus, and of
//     JSON encoders with and without HTML escaping;
//   - any other URL encoding of those (lowercase hex, over-escaping…), by
//     searching the output with %XX decoded (and with '+' as a space);
//   - any other JSON escaping of those (ensure_ascii \uXXXX, \/…), by
//     searching the output with JSON escapes decoded;
//   - a token of 8 bytes or more folded over lines;
//   - standard and URL-safe base64 of v, padded or not, and the part of the
//     base64 of a longer stream that is determined by v alone at each of the
//     three byte alignments (so `echo $V | base64` and `printf 'K=%s' "$V" |
//     base64` are caught), also when wrapped over lines;
//   - lowercase and uppercase hex of v, also when wrapped or space-separated;
//   - the forms that JSON encoding of the output would turn into v on the
//     wire (if v contains backslash escapes).
//
// Overlapping matches (of one value or of several) become one
// "[redacted:A,B]" that names the values not contained in another match.
//
// A Redactor is for accidental exposure: a command chosen to do so can always
// transform a value (reverse it, encrypt it) or send it elsewhere.
type Redactor struct {
	names  []string
	groups [numViews]matcher
	short  []string
	margin int
}

// NewRedactor returns a Redactor for values, keyed by secret name. It copies
// the values; the caller may wipe its own.
func NewRedactor(values map[string][]byte) *Redactor {
	r := &Redactor{}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	maxLen := 0
	for _, name := range names {
		v := values[name]
		if len(v) == 0 {
			continue
		}
		id := int32(len(r.names))
		r.names = append(r.names, name)
		maxLen = max(maxLen, 2*len(v)+4) // hex, base64 and the rest are no longer
		if len(v) < MinRedactLen {
			r.short = append(r.short, name)
			r.groups[viewRaw].add(v, id)
			continue
		}
		var literal [][]byte // forms that appear as text
		literal = append(literal, v)
		var fixed []byte
		if !utf8.Valid(v) {
			// As JSON encoders and lenient decoders print it.
			fixed = replaceInvalid(v)
			literal = append(literal, fixed)
		}
		if t := bytes.TrimSpace(v); len(t) >= MinRedactLen && len(t) < len(v) {
			literal = append(literal, t)
		}
		if bytes.ContainsAny(v, "\r\n") {
			for line := range bytes.SplitSeq(v, []byte("\n")) {
				if line = bytes.TrimSpace(line); len(line) >= minLineLen {
					literal = append(literal, line)
				}
			}
		}
		// The common encoders' exact output, searched for as it is: the
		// decoded views find any other encoding, but can be misled by what
		// precedes the value (a stray "%" or "\\").
		for _, f := range escapedForms(v) {
			if !bytes.Equal(f, v) {
				r.groups[viewRaw].add(f, id)
			}
			clear(f)
		}
		for _, f := range literal {
			r.groups[viewRaw].add(f, id)
			r.groups[viewPercent].add(f, id)
			r.groups[viewJSON].add(f, id)
			if bytes.ContainsRune(f, ' ') {
				r.groups[viewPercentPlus].add(f, id)
			}
			if len(f) >= minLineLen && !bytes.ContainsAny(f, " \t\r\n\v\f") {
				r.groups[viewSquash].add(f, id) // a token folded over lines
			}
		}
		clear(fixed)
		// Pieces of the value: a dump's text column (hexdump -C, xxd, od -c) shows it 16 bytes a line,
		// and a command may cut it up. Every run of windowLen bytes of the value (of its first
		// maxWindowed bytes) is redacted, as text and as hex.
		if len(v) >= 2*windowLen {
			for i := 0; i+windowLen <= min(len(v), maxWindowed); i++ {
				w := v[i : i+windowLen]
				r.groups[viewRaw].add(w, id)
				r.groups[viewSquash].add(w, id)
				h := make([]byte, hex.EncodedLen(windowLen))
				hex.Encode(h, w)
				r.groups[viewSquash].add(h, id)
				r.groups[viewSquash].add(bytes.ToUpper(h), id)
				clear(h)
			}
		}
		// What JSON-encoding the output would turn into v on the wire: if
		// v holds `\u003c`, an output holding `<` must go.
		u := v // u is v or a decoded copy of it, cleared when done with
		for range maxJSONDepth {
			d, _, _ := unescapeJSON(u, false)
			if bytes.Equal(d, u) {
				clear(d)
				break
			}
			if len(d) >= MinRedactLen {
				r.groups[viewRaw].add(d, id)
			}
			if &u[0] != &v[0] {
				clear(u)
			}
			u = d
		}
		if &u[0] != &v[0] {
			clear(u)
		}
		for _, f := range encodedForms(v) {
			if len(f) >= MinRedactLen {
				r.groups[viewSquash].add(f, id)
			}
			clear(f)
		}
	}
	for i := range r.groups {
		r.groups[i].build()
	}
	// A JSON-escaped byte takes up to 6 bytes of output (\u00XX), a folded
	// one any amount: keep a generous margin past a truncation point.
	r.margin = 6*maxLen + 1024
	return r
}

// replaceInvalid returns v with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json does.
func replaceInvalid(v []byte) []byte {
	out := make([]byte, 0, len(v)+8)
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, v[:n]...)
		}
		v = v[n:]
	}
	return out
}

// escapedForms returns v as URL encoders (strict like Python's quote(s,
// safe=""), QueryEscape, PathEscape, encodeURIComponent) and JSON encoders
// (with and without HTML escaping) write it.
func escapedForms(v []byte) [][]byte {
	unreserved := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
	}
	sets := []struct {
		keep func(byte) bool
		plus bool // space as '+'
	}{
		{unreserved, false},
		{unreserved, true},
		{func(c byte) bool { return unreserved(c) || bytes.IndexByte([]byte("$&+:=@"), c) >= 0 }, false}, // url.PathEscape
		{func(c byte) bool { return unreserved(c) || bytes.IndexByte([]byte("!'()*"), c) >= 0 }, false},  // encodeURIComponent
	}
	var out [][]byte
	for _, set := range sets {
		b := make([]byte, 0, 3*len(v))
		for _, c := range v {
			switch {
			case set.keep(c):
				b = append(b, c)
			case c == ' ' && set.plus:
				b = append(b, '+')
			default:
				b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			}
		}
		out = append(out, b)
	}
	return append(out, escapeJSON(v, true), escapeJSON(v, false))
}

// escapeJSON returns v as the body of a JSON string, as encoding/json
// writes it (html: <, > and & escaped too, as by default).
func escapeJSON(v []byte, html bool) []byte {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, len(v)+8)
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r < 0x20 || html && (r == '<' || r == '>' || r == '&'):
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&15])
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&15])
		default:
			b = append(b, v[:n]...)
		}
		v = v[n:]
	}
	return b
}

// encodedForms returns the base64 and hex forms of v.
func encodedForms(v []byte) [][]byte {
	var out [][]byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b := make([]byte, enc.EncodedLen(len(v)))
		enc.Encode(b, v)
		out = append(out, b)
	}
	// The characters of base64(prefix ‖ v ‖ suffix) that depend on v alone,
	// for a prefix of o bytes: character i covers bits [6i, 6i+6), and v
	// covers bits [8o, 8(o+len(v))).
	for o := range 3 {
		src := make([]byte, o+len(v)+2)
		copy(src[o:], v)
		from, to := (8*o+5)/6, 8*(o+len(v))/6
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			b := make([]byte, enc.EncodedLen(len(src)))
			enc.Encode(b, src)
			f := slices.Clone(b[from:to])
			clear(b)
			out = append(out, f)
		}
		clear(src)
	}
	h := make([]byte, hex.EncodedLen(len(v)))
	hex.Encode(h, v)
	out = append(out, h, bytes.ToUpper(h))
	return out
}

// Short returns the names of the values shorter than [MinRedactLen]: only
// their exact bytes are redacted, and they may be guessable from the output.
func (r *Redactor) Short() []string { return slices.Clone(r.short) }

// Margin is how many bytes past a truncation point the caller of
// [Redactor.RedactHead] must keep so that a value cut by the truncation is
// still recognised.
func (r *Redactor) Margin() int { return r.margin }

// Wipe zeroes the Redactor's copies of the values. It must not be used
// afterwards.
func (r *Redactor) Wipe() {
	for i := range r.groups {
		r.groups[i].wipe()
	}
}

// Redact returns p with every occurrence of a value, in any form the
// Redactor knows, replaced. p is not modified.
func (r *Redactor) Redact(p []byte) []byte { return r.RedactHead(p, len(p)) }

// RedactString is [Redactor.Redact] for text, such as an error message.
func (r *Redactor) RedactString(s string) string {
	if r == nil {
		return s
	}
	return string(r.Redact([]byte(s)))
}

// RedactHead redacts p and returns the redacted form of its first n bytes:
// a match that starts before n and ends after it is replaced whole, so a value
// cut by truncating the output at n is not half revealed. p should extend at
// least [Redactor.Margin] bytes past n (or be the whole output).
func (r *Redactor) RedactHead(p []byte, n int) []byte {
	n = min(n, len(p))
	if r == nil {
		return bytes.Clone(p[:n])
	}
	regions := r.regions(p)
	var out bytes.Buffer
	out.Grow(n)
	at := 0
	for _, g := range regions {
		if g.s >= n {
			break
		}
		out.Write(p[at:g.s])
		out.WriteString("[redacted:")
		for i, id := range g.names {
			if i > 0 {
				out.WriteByte(',')
			}
			out.WriteString(r.names[id])
		}
		out.WriteByte(']')
		at = g.e
	}
	if at < n {
		out.Write(p[at:n])
	}
	return out.Bytes()
}

// Found returns the names of the values that p contains in a form the
// Redactor knows, or nil.
func (r *Redactor) Found(p []byte) []string {
	var names []string
	for _, g := range r.regions(p) {
		for _, id := range g.names {
			if !slices.Contains(names, r.names[id]) {
				names = append(names, r.names[id])
			}
		}
	}
	return names
}

// region is a run of output covered by overlapping matches.
type region struct {
	s, e  int
	names []int32
}

func (r *Redactor) regions(p []byte) []region {
	var all []match
	for v := range numViews {
		g := &r.groups[v]
		if g.empty() {
			continue
		}
		vb, changed := decodeView(v, p)
		if !changed && v != viewRaw && v != viewSquash {
			continue // the same bytes as the raw view, searched for the same forms
		}
		found := g.scan(vb.b, nil)
		if vb.start != nil {
			for i := range found {
				found[i].s, found[i].e = int(vb.start[found[i].s]), int(vb.end[found[i].e-1])
			}
		}
		all = append(all, found...)
		if changed {
			clear(vb.b) // a decoded view may hold decoded values
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b match) int {
		if c := cmp.Compare(a.s, b.s); c != 0 {
			return c
		}
		if c := cmp.Compare(b.e, a.e); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	var out []region
	for _, m := range all {
		if k := len(out) - 1; k >= 0 && m.s < out[k].e {
			if m.e > out[k].e { // not inside what the region already covers
				out[k].e = m.e
				if !slices.Contains(out[k].names, m.id) {
					out[k].names = append(out[k].names, m.id)
				}
			}
			continue
		}
		out = append(out, region{s: m.s, e: m.e, names: []int32{m.id}})
	}
	return out
}

// ---- views ----

// viewBytes is a decoded view of the output: decoded byte i came from output
// bytes [start[i], end[i]). A nil start means the view is the output itself.
type viewBytes struct {
	b          []byte
	start, end []int32
}

func decodeView(v view, p []byte) (viewBytes, bool) {
	switch v {
	case viewSquash:
		if !bytes.ContainsAny(p, " \t\r\n\v\f") {
			return viewBytes{b: p}, false
		}
		vb := newViewBytes(len(p))
		for i, c := range p {
			switch c {
			case ' ', '\t', '\r', '\n', '\v', '\f':
				continue
			}
			vb.push(c, i, i+1)
		}
		return vb, true
	case viewPercent, viewPercentPlus:
		plus := v == viewPercentPlus
		if !bytes.ContainsRune(p, '%') && (!plus || !bytes.ContainsRune(p, '+')) {
			return viewBytes{b: p}, false
		}
		vb := newViewBytes(len(p))
		for i := 0; i < len(p); i++ {
			c := p[i]
			if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
				vb.push(unhex(p[i+1])<<4|unhex(p[i+2]), i, i+3)
				i += 2
				continue
			}
			if plus && c == '+' {
				c = ' '
			}
			vb.push(c, i, i+1)
		}
		return vb, true
	case viewJSON:
		if !bytes.ContainsRune(p, '\\') {
			return viewBytes{b: p}, false
		}
		b, start, end := unescapeJSON(p, true)
		return viewBytes{b: b, start: start, end: end}, true
	}
	return viewBytes{b: p}, false
}

func newViewBytes(n int) viewBytes {
	return viewBytes{b: make([]byte, 0, n), start: make([]int32, 0, n), end: make([]int32, 0, n)}
}

func (vb *viewBytes) push(c byte, s, e int) {
	vb.b = append(vb.b, c)
	vb.start = append(vb.start, int32(s))
	vb.end = append(vb.end, int32(e))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// unescapeJSON decodes the JSON string escapes in p, leaving anything else
// (including invalid escapes) as it is. With positions, it also returns for
// each decoded byte the output bytes it came from.
func unescapeJSON(p []byte, positions bool) (b []byte, start, end []int32) {
	b = make([]byte, 0, len(p))
	if positions {
		start, end = make([]int32, 0, len(p)), make([]int32, 0, len(p))
	}
	emit := func(d []byte, s, e int) {
		b = append(b, d...)
		if positions {
			for range d {
				start = append(start, int32(s))
				end = append(end, int32(e))
			}
		}
	}
	var rb [utf8.UTFMax]byte
	for i := 0; i < len(p); i++ {
		if p[i] != '\\' || i+1 >= len(p) {
			emit(p[i:i+1], i, i+1)
			continue
		}
		var c byte
		switch p[i+1] {
		case '"', '\\', '/':
			c = p[i+1]
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r1, ok := hex4(p[i+2:])
			if !ok {
				emit(p[i:i+1], i, i+1)
				continue
			}
			n := 6
			if utf16IsHigh(r1) && len(p) >= i+12 && p[i+6] == '\\' && p[i+7] == 'u' {
				if r2, ok := hex4(p[i+8:]); ok && utf16IsLow(r2) {
					r1 = (r1-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					n = 12
				}
			}
			w := utf8.EncodeRune(rb[:], r1)
			emit(rb[:w], i, i+n)
			i += n - 1
			continue
		default:
			emit(p[i:i+1], i, i+1)
			continue
		}
		emit([]byte{c}, i, i+2)
		i++
	}
	return b, start, end
}

func hex4(p []byte) (rune, bool) {
	if len(p) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p[:4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
}

func utf16IsHigh(r rune) bool { return 0xD800 <= r && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return 0xDC00 <= r && r < 0xE000 }

// ---- multi-pattern search ----

// matcher finds every occurrence of a set of patterns in one pass: patterns
// of 4 bytes or more are indexed by their first 4 bytes, behind a 64 Kibit
// filter on a hash of them, so that most positions cost one lookup in a bit
// set; shorter ones are searched for one by one.
type matcher struct {
	pats   [][]byte
	ids    []int32 // the value each pattern belongs to
	index  map[uint32][]int32
	filter []uint64
	tiny   []int32
}

type match struct {
	s, e int
	id   int32
}

func (m *matcher) add(p []byte, id int32) {
	m.pats = append(m.pats, bytes.Clone(p))
	m.ids = append(m.ids, id)
}

func (m *matcher) build() {
	if len(m.pats) == 0 {
		return
	}
	m.index = make(map[uint32][]int32)
	m.filter = make([]uint64, 1<<16/64)
	for i, p := range m.pats {
		if len(p) < 4 {
			m.tiny = append(m.tiny, int32(i))
			continue
		}
		k := binary.LittleEndian.Uint32(p)
		if slices.ContainsFunc(m.index[k], func(j int32) bool { return m.ids[j] == m.ids[i] && bytes.Equal(m.pats[j], p) }) {
			continue // the same form of the same value twice
		}
		m.index[k] = append(m.index[k], int32(i))
		h := hash4(k)
		m.filter[h>>6] |= 1 << (h & 63)
	}
}

func (m *matcher) empty() bool { return len(m.pats) == 0 }

func hash4(k uint32) uint32 { return (k * 0x9E3779B1) >> 16 }

// scan appends the matches in v to out. Overlapping matches of one pattern
// are merged, so a long run of a repeated value yields one match.
func (m *matcher) scan(v []byte, out []match) []match {
	last := make([]int, len(m.pats)) // 1 + index in out of the pattern's last match
	add := func(s int, pi int32) {
		e := s + len(m.pats[pi])
		if j := last[pi]; j > 0 && out[j-1].e > s {
			out[j-1].e = e
			return
		}
		out = append(out, match{s: s, e: e, id: m.ids[pi]})
		last[pi] = len(out)
	}
	if len(m.index) > 0 {
		for i := 0; i+4 <= len(v); i++ {
			k := binary.LittleEndian.Uint32(v[i:])
			h := hash4(k)
			if m.filter[h>>6]&(1<<(h&63)) == 0 {
				continue
			}
			for _, pi := range m.index[k] {
				if p := m.pats[pi]; bytes.HasPrefix(v[i:], p) {
					add(i, pi)
				}
			}
		}
	}
	for _, pi := range m.tiny {
		p := m.pats[pi]
		for i := 0; ; i++ {
			j := bytes.Index(v[i:], p)
			if j < 0 {
				break
			}
			i += j
			add(i, pi)
		}
	}
	return out
}

func (m *matcher) wipe() {
	for _, p := range m.pats {
		clear(p)
	}
	clear(m.index)
	clear(m.filter)
	m.pats, m.ids, m.tiny = nil, nil, nil
}
