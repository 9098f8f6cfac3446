// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// parseJSON reads one flat JSON object whose values are strings. Other
// values are errors; so is anything after the object. A repeated key is a
// warning, and the last value wins, as with encoding/json.
func parseJSON(src []byte, c *collector) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		jsonError(src, dec, err, c)
		return
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		c.errorf(tokenStart(src, 0), "the JSON must be one object of strings")
		return
	}
	for dec.More() {
		keyOff := tokenStart(src, int(dec.InputOffset()))
		tok, err = dec.Token()
		if err != nil {
			jsonError(src, dec, err, c)
			return
		}
		name, _ := tok.(string)
		ok := c.checkName(name, keyOff, false, nameRule)
		valOff := tokenStart(src, int(dec.InputOffset()))
		tok, err = dec.Token()
		if err != nil {
			jsonError(src, dec, err, c)
			return
		}
		var kind string
		switch v := tok.(type) {
		case string:
			raw := src[valOff:dec.InputOffset()]
			switch {
			case strings.ContainsRune(v, 0):
				c.errorf(valOff, "the value contains a NUL character, which environment values cannot hold")
				ok = false
			case strings.ContainsRune(v, utf8.RuneError) && !bytes.Contains(raw, []byte("\uFFFD")) &&
				!bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)):
				c.errorf(valOff, `the value has an invalid \u escape (an unpaired surrogate)`)
				ok = false
			}
			if ok {
				value := []byte(v)
				if blankEnds(value) {
					c.warn(valOff, WarnWhitespace, "the value starts or ends with blanks; they are kept")
				}
				c.add(name, value, keyOff)
			}
			continue
		case json.Delim:
			kind = "an object"
			if v == '[' {
				kind = "an array"
			}
			if err := skipNested(dec); err != nil {
				jsonError(src, dec, err, c)
				return
			}
		case json.Number:
			kind = "a number"
		case bool:
			kind = "a boolean"
		case nil:
			kind = "null"
		}
		if ok {
			c.errorf(valOff, "the value of %q is %s; values must be JSON strings", name, kind)
		} else {
			c.errorf(valOff, "the value is %s; values must be JSON strings", kind)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		jsonError(src, dec, err, c)
		return
	}
	off := tokenStart(src, int(dec.InputOffset()))
	if _, err := dec.Token(); err != io.EOF {
		c.errorf(off, "unexpected data after the JSON object")
	}
}

// skipNested consumes the rest of an object or array whose opening
// delimiter was just read.
func skipNested(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// tokenStart skips JSON white space and separators from off.
func tokenStart(src []byte, off int) int {
	for off < len(src) && strings.IndexByte(" \t\r\n,:", src[off]) >= 0 {
		off++
	}
	return off
}

// jsonCharRE is compiled on first use, not at start-up: every ov command links this package.
var jsonCharRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`invalid character '(?:[^'\\]|\\.)+'`) })

// jsonError reports a decoding error without echoing input characters,
// which may belong to a value.
func jsonError(src []byte, dec *json.Decoder, err error, c *collector) {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off := int(se.Offset) - 1
		if off < 0 {
			off = 0
		}
		c.errorf(off, "invalid JSON: %s", jsonCharRE().ReplaceAllString(se.Error(), "invalid character"))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		c.errorf(len(src), "invalid JSON: unexpected end of the file")
	default:
		c.errorf(int(dec.InputOffset()), "invalid JSON")
	}
}
