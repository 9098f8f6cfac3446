// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"fmt"
	"testing"
)

// benchFile is a 1,000-line dotenv file mixing the usual kinds of lines.
func benchFile() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() >= 0; i++ {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "# section %d\n", i)
		case 1:
			fmt.Fprintf(&b, "export PLAIN_%d=value-%d\n", i, i)
		case 2:
			fmt.Fprintf(&b, "SINGLE_%d='single quoted $%d value'\n", i, i)
		case 3:
			fmt.Fprintf(&b, "DOUBLE_%d=\"double\\tquoted\\n%d\" # trailing comment\n", i, i)
		case 4:
			fmt.Fprintf(&b, "DATABASE_URL_%d=postgres://user:p%%40ss@db.internal:5432/app_%d?sslmode=require\n", i, i)
		case 5:
			fmt.Fprintf(&b, "KEY_%d=\"-----BEGIN KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA%d\n-----END KEY-----\"\n", i, i)
		case 6:
			b.WriteString("\n")
		case 7:
			fmt.Fprintf(&b, "  SPACED_%d = some spaced out value %d  \n", i, i)
		case 8:
			fmt.Fprintf(&b, "JSON_%d={\"a\": %d, \"b\": [1, 2]}\n", i, i)
		case 9:
			fmt.Fprintf(&b, "EMPTY_%d=\n", i)
		}
		if bytes.Count(b.Bytes(), []byte("\n")) >= 1000 {
			break
		}
	}
	return b.Bytes()
}

func BenchmarkParse1000Lines(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse1000LinesExpand(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data), Options{Expand: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite1000Entries(b *testing.B) {
	res, err := Parse(bytes.NewReader(benchFile()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(&bytes.Buffer{}, res.Entries, Dotenv); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchFile(t *testing.T) {
	data := benchFile()
	if n := bytes.Count(data, []byte("\n")); n != 1000 {
		t.Fatalf("bench file has %d lines", n)
	}
	res, err := Parse(bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) < 600 {
		t.Fatalf("bench file has %d entries", len(res.Entries))
	}
}
