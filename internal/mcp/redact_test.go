// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

const (
	testToken = `tok_9f8e7d6c5b4a3210/+=&<>"'xyz`
	testPEM   = "-----BEGIN PRIVATE KEY-----\n" +
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" +
		"MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n" +
		"-----END PRIVATE KEY-----\n"
	testPassword = "hunter2-correct-horse"
)

// pyQuote is Python's urllib.parse.quote(s, safe=""): everything but
// unreserved characters escaped, uppercase hex.
func pyQuote(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func jsonEsc(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// asciiJSON is Python's json.dumps with ensure_ascii: every non-ASCII rune
// as \uXXXX (surrogate pairs above U+FFFF).
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		case r > 0x7E || r < 0x20 || r == '"' || r == '\\':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func spaced(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, " ")
}

func TestRedactorForms(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	long := strings.Repeat("0123456789abcdef", 5) // 80 bytes: base64 wraps at 76
	unicodeVal := "pässwörd-🔑-秘密"
	cases := []struct {
		name, value string
		output      string   // the output, with the value in some form
		gone        []string // must not be in the redacted output
	}{
		{"raw", testToken, "value=" + testToken + ";", []string{testToken}},
		{"trimmed", "  " + testPassword + "\n", "pw=" + testPassword + ".", []string{testPassword}},
		{"base64 std", testToken, b64([]byte(testToken)), []string{b64([]byte(testToken))}},
		{"base64 raw std", testToken, base64.RawStdEncoding.EncodeToString([]byte(testToken)), []string{base64.RawStdEncoding.EncodeToString([]byte(testToken))}},
		{"base64 url", testToken, base64.URLEncoding.EncodeToString([]byte(testToken)), []string{base64.URLEncoding.EncodeToString([]byte(testToken))}},
		{"base64 raw url", testToken, base64.RawURLEncoding.EncodeToString([]byte(testToken)), []string{base64.RawURLEncoding.EncodeToString([]byte(testToken))}},
		{"base64 of echo (value then newline)", testToken, b64([]byte(testToken + "\n")), []string{b64([]byte(testToken + "\n"))[:40]}},
		{"base64 at offset 1", testToken, b64([]byte("X" + testToken)), []string{b64([]byte("X" + testToken))[4:40]}},
		{"base64 at offset 2", testToken, b64([]byte("K=" + testToken + "\n")), []string{b64([]byte("K=" + testToken))[4:40]}},
		{"base64 wrapped at 76", long, wrap(b64([]byte(long+"\n")), 76) + "\n", []string{wrap(b64([]byte(long)), 76)[:76], b64([]byte(long))[77:100]}},
		{"hex lower", testToken, hex.EncodeToString([]byte(testToken)), []string{hex.EncodeToString([]byte(testToken))}},
		{"hex upper", testToken, strings.ToUpper(hex.EncodeToString([]byte(testToken))), []string{strings.ToUpper(hex.EncodeToString([]byte(testToken)))}},
		{"hex wrapped (xxd -p)", long, wrap(hex.EncodeToString([]byte(long)), 60), []string{hex.EncodeToString([]byte(long))[:60]}},
		{"hex spaced (hexdump)", testToken, spaced(hex.EncodeToString([]byte(testToken))), []string{spaced(hex.EncodeToString([]byte(testToken)))[:30]}},
		{"QueryEscape", testToken, "https://x/?t=" + url.QueryEscape(testToken), []string{url.QueryEscape(testToken), testToken}},
		{"PathEscape", testToken, "https://x/" + url.PathEscape(testToken), []string{url.PathEscape(testToken)}},
		{"python quote safe=''", testToken, pyQuote(testToken), []string{pyQuote(testToken)}},
		{"lowercase percent hex", testToken, strings.ToLower(pyQuote(testToken)), []string{strings.ToLower(pyQuote(testToken))}},
		{"form encoding of a value with spaces", "open sesame please", "q=" + url.QueryEscape("open sesame please"), []string{"open+sesame+please"}},
		{"JSON escaped", testToken, `{"t":"` + jsonEsc(testToken) + `"}`, []string{jsonEsc(testToken)}},
		{"JSON ensure_ascii", unicodeVal, `{"t":"` + asciiJSON(unicodeVal) + `"}`, []string{asciiJSON(unicodeVal), unicodeVal}},
		{"JSON escaped PEM", testPEM, `{"key":"` + jsonEsc(testPEM) + `"}`, []string{jsonEsc(testPEM), "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"}},
		{"PEM lines split by echo", testPEM, strings.Join(strings.Fields(testPEM), " "), []string{
			"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
			"MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
		}},
		{"PEM with CRLF", testPEM, strings.ReplaceAll(testPEM, "\n", "\r\n"), []string{"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", "BEGIN PRIVATE KEY"}},
		{"folded token", long, wrap(long, 20), []string{long[:20], long[20:40]}},
		{"wire form: output that JSON encoding turns into the value", `abc\u003cdef\u003e`, "x<def>y abc<def>", []string{"abc<def>"}},
		{"repeated value", testPassword, strings.Repeat(testPassword, 5) + "x" + testPassword + testPassword[:10], []string{testPassword}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewRedactor(map[string][]byte{"SECRET": []byte(c.value)})
			defer r.Wipe()
			out := string(r.Redact([]byte("<<" + c.output + ">>")))
			for _, g := range c.gone {
				if strings.Contains(out, g) {
					t.Errorf("redacted output still holds %q:\n%s", g, out)
				}
			}
			if !strings.Contains(out, "[redacted:SECRET]") {
				t.Errorf("no [redacted:SECRET] in %q", out)
			}
			if !strings.HasPrefix(out, "<<") || !strings.HasSuffix(out, ">>") {
				t.Errorf("redaction ate the surrounding text: %q", out)
			}
		})
	}
}

func TestRedactorLeavesOtherTextAlone(t *testing.T) {
	r := NewRedactor(map[string][]byte{"A": []byte(testToken), "B": []byte(testPEM), "EMPTY": nil})
	defer r.Wipe()
	in := "PASS\nok  github.com/x/y 0.01s\n%41 \\u0041 +++ 0123 deadbeef\n" + strings.Repeat("a", 100)
	if got := string(r.Redact([]byte(in))); got != in {
		t.Errorf("changed text holding no value:\n%q\n%q", in, got)
	}
	if got := r.Found([]byte(in)); got != nil {
		t.Errorf("Found = %v in text holding no value", got)
	}
}

func TestRedactorOverlap(t *testing.T) {
	url := "postgres://app:" + testPassword + "@db:5432/app"
	r := NewRedactor(map[string][]byte{
		"DATABASE_URL": []byte(url),
		"DB_PASSWORD":  []byte(testPassword),
		"LEFT":         []byte("aaaa-bbbb-cccc"),
		"RIGHT":        []byte("cccc-dddd-eeee"),
	})
	defer r.Wipe()
	for _, c := range []struct{ in, want string }{
		// A value inside another: one label, and nothing said about the inner one.
		{"url=" + url + ".", "url=[redacted:DATABASE_URL]."},
		{"pw=" + testPassword + ".", "pw=[redacted:DB_PASSWORD]."},
		// Partial overlap: one region naming both.
		{"x aaaa-bbbb-cccc-dddd-eeee y", "x [redacted:LEFT,RIGHT] y"},
		// Adjacent: two labels.
		{testPassword + testPassword, "[redacted:DB_PASSWORD][redacted:DB_PASSWORD]"},
	} {
		if got := string(r.Redact([]byte(c.in))); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactorShortValues(t *testing.T) {
	r := NewRedactor(map[string][]byte{"PORT": []byte("42"), "TOKEN": []byte(testToken)})
	defer r.Wipe()
	if got := r.Short(); len(got) != 1 || got[0] != "PORT" {
		t.Fatalf("Short() = %v, want [PORT]", got)
	}
	// Exact bytes are redacted; the encodings are not (base64 "NDI=" would be
	// far too common to match).
	if got := string(r.Redact([]byte("port 42, b64 NDI="))); got != "port [redacted:PORT], b64 NDI=" {
		t.Errorf("got %q", got)
	}
}

// TestRedactorChunks writes the output through a capture in random chunks:
// a value split across writes must still be redacted, since redaction runs
// on the whole captured output.
func TestRedactorChunks(t *testing.T) {
	r := NewRedactor(map[string][]byte{"TOKEN": []byte(testToken)})
	defer r.Wipe()
	out := []byte(strings.Repeat("line of output\n", 100) + testToken + "\n" + base64.StdEncoding.EncodeToString([]byte(testToken)))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		c := &capture{limit: 1 << 20}
		for p := out; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(7))
			_, _ = c.Write(p[:n])
			p = p[n:]
		}
		got := r.Redact(c.buf)
		if bytes.Contains(got, []byte(testToken)) || bytes.Contains(got, []byte(base64.StdEncoding.EncodeToString([]byte(testToken)))[:40]) {
			t.Fatalf("value survived chunked capture:\n%s", got)
		}
		if n := bytes.Count(got, []byte("[redacted:TOKEN]")); n != 2 {
			t.Fatalf("%d labels, want 2", n)
		}
	}
}

func TestRedactorTruncation(t *testing.T) {
	r := NewRedactor(map[string][]byte{"TOKEN": []byte(testToken)})
	defer r.Wipe()
	prefix := strings.Repeat("x", 100)
	out := []byte(prefix + testToken + strings.Repeat("y", 100))
	for _, cut := range []int{101, 110, 100 + len(testToken) - 1} {
		got := string(r.RedactHead(out, cut))
		if got != prefix+"[redacted:TOKEN]" {
			t.Errorf("cut at %d: %q, want the prefix then the whole label", cut, got)
		}
	}
	// Through the capture, as run_command uses it: the value lies across the
	// limit, and the margin keeps enough of it to recognise.
	c := &capture{limit: 105 + r.Margin()}
	_, _ = c.Write(out)
	if got := string(r.RedactHead(c.buf, 105)); strings.Contains(got, testToken[:5]) || !strings.HasSuffix(got, "[redacted:TOKEN]") {
		t.Errorf("truncated capture: %q", got)
	}
	if c.total != int64(len(out)) {
		t.Errorf("capture counted %d bytes, want %d", c.total, len(out))
	}
	if got := string(r.RedactHead(out, 50)); got != prefix[:50] {
		t.Errorf("cut before the value: %q", got)
	}
}

// The explicit escaped forms must be exactly what the standard encoders
// write.
func TestEscapedForms(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	samples := []string{testToken, testPEM, "a b+c/d?e=f&g%h~i!j'k(l)m*n;o:p@q", "\b\f\x00\x1f\u2028\u2029é🔑\xff\xfe<>&"}
	for range 200 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		samples = append(samples, string(b))
	}
	for _, v := range samples {
		f := escapedForms([]byte(v))
		var html, plain bytes.Buffer
		_ = json.NewEncoder(&html).Encode(v)
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		for _, c := range []struct {
			name, got, want string
		}{
			{"quote", string(f[0]), pyQuote(v)},
			{"QueryEscape", string(f[1]), url.QueryEscape(v)},
			{"PathEscape", string(f[2]), url.PathEscape(v)},
			{"JSON", string(f[4]), strings.TrimSuffix(html.String(), "\n")[1 : html.Len()-2]},
			{"JSON without HTML escaping", string(f[5]), strings.TrimSuffix(plain.String(), "\n")[1 : plain.Len()-2]},
		} {
			if c.got != c.want {
				t.Errorf("%s of %q = %q, want %q", c.name, v, c.got, c.want)
			}
		}
	}
}

// wireLeaks is the last check before a stream is sent: it must find a value
// that only the JSON encoding of the result would produce, and nothing in
// output that was redacted.
func TestWireLeaks(t *testing.T) {
	r := NewRedactor(map[string][]byte{"ODD": []byte(`abc\u003cdef`), "TOKEN": []byte(testToken), "PORT": []byte("42")})
	defer r.Wipe()
	// Encoded as JSON with HTML escaping, "abc<def" becomes the value.
	if got := wireLeaks(r, []byte("x abc<def y")); len(got) != 1 || got[0] != "ODD" {
		t.Errorf("wireLeaks = %v, want [ODD]", got)
	}
	if got := wireLeaks(r, r.Redact([]byte("x abc<def y "+testToken+" 42"))); got != nil {
		t.Errorf("wireLeaks of redacted output = %v", got)
	}
	// Short values are not checked: "42" is everywhere.
	if got := wireLeaks(r, []byte("exit 42")); got != nil {
		t.Errorf("wireLeaks flagged a short value: %v", got)
	}
}

func TestRedactorWipe(t *testing.T) {
	v := []byte(testToken)
	r := NewRedactor(map[string][]byte{"TOKEN": v})
	r.Wipe()
	if string(v) != testToken {
		t.Fatal("Wipe touched the caller's value")
	}
	if got := string(r.Redact([]byte(testToken))); got != testToken {
		t.Fatalf("a wiped redactor still matched: %q", got)
	}
}

// FuzzRedactor checks that a value placed in random text, raw or encoded,
// never survives.
func FuzzRedactor(f *testing.F) {
	f.Add([]byte(testToken), []byte("before "), []byte(" after"), uint8(0))
	f.Add([]byte(testPEM), []byte(""), []byte("\n"), uint8(3))
	f.Add([]byte("abcd"), []byte("abc"), []byte("bcd"), uint8(5))
	f.Fuzz(func(t *testing.T, v, pre, post []byte, form uint8) {
		if len(v) < 8 || len(pre) > 64 || len(post) > 64 {
			return
		}
		encs := []func([]byte) string{
			func(b []byte) string { return string(b) },
			base64.StdEncoding.EncodeToString,
			base64.RawURLEncoding.EncodeToString,
			hex.EncodeToString,
			func(b []byte) string { return url.QueryEscape(string(b)) },
			func(b []byte) string { return pyQuote(string(b)) },
			func(b []byte) string { return jsonEsc(string(b)) },
		}
		enc := encs[int(form)%len(encs)]
		r := NewRedactor(map[string][]byte{"V": v})
		defer r.Wipe()
		got := r.Redact([]byte(string(pre) + enc(v) + string(post)))
		if e := enc(v); bytes.Contains(got, []byte(e)) {
			t.Fatalf("form %d of %q survived in %q", form, v, got)
		}
	})
}

func BenchmarkRedactor(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := make(map[string][]byte, 50)
	var forms []string
	for i := range 50 {
		v := make([]byte, 24+rng.IntN(40))
		for j := range v {
			v[j] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[rng.IntN(64)]
		}
		values[fmt.Sprintf("SECRET_%02d", i)] = v
		forms = append(forms, string(v), base64.StdEncoding.EncodeToString(v), url.QueryEscape(string(v)))
	}
	// 1 MiB of log-like output with a value every ~16 KiB.
	var out bytes.Buffer
	for out.Len() < 1<<20 {
		fmt.Fprintf(&out, "2025-01-01T00:00:00Z INFO request id=%d path=/api/v1/items?page=%d status=200 took=%dms\n", rng.IntN(1e9), rng.IntN(100), rng.IntN(900))
		if rng.IntN(160) == 0 {
			fmt.Fprintf(&out, "debug: config %s\n", forms[rng.IntN(len(forms))])
		}
	}
	p := out.Bytes()[:1<<20]
	r := NewRedactor(values)
	defer r.Wipe()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(p)
	}
}

// BenchmarkRedactorLong measures building a Redactor for long values (every
// 8-byte run of them is a pattern) and redacting 1 MiB of output with it,
// against the same for values of 200 bytes: compare the two in one run.
func BenchmarkRedactorLong(b *testing.B) {
	for _, size := range []int{200, 377, 4096} {
		b.Run(fmt.Sprintf("4 values of %d bytes", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(5, 6))
			values := map[string][]byte{}
			for i := range 4 {
				v := make([]byte, size)
				for j := range v {
					v[j] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[rng.IntN(64)]
				}
				values[fmt.Sprintf("V%d", i)] = v
			}
			var out bytes.Buffer
			for out.Len() < 1<<20 {
				fmt.Fprintf(&out, "2025-01-01T00:00:00Z INFO request id=%d status=200 took=%dms\n", rng.IntN(1e9), rng.IntN(900))
			}
			p := out.Bytes()[:1<<20]
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				r := NewRedactor(values)
				r.Redact(p)
				r.Wipe()
			}
		})
	}
}
