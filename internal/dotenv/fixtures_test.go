// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden")

// golden is what a fixture parses to. Goldens are this parser's own output
// (go test -update), reviewed by hand: a regression record, not evidence of
// what the peer libraries read, even for the files named after a peer. The
// independent oracles are in peers_oracle_test.go (the peers' suites and the
// real motdotla/dotenv) and writepeers_test.go.
type golden struct {
	Entries  []goldenEntry `json:"entries,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	Errors   []string      `json:"errors,omitempty"`
}

type goldenEntry struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	At    string `json:"at"`
}

// TestFixtures parses every file under testdata/<format>/ and compares the
// result with its .golden file. A ".expand." file is parsed with Expand.
func TestFixtures(t *testing.T) {
	var files []string
	for _, dir := range []string{"dotenv", "systemd", "docker", "json"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	n := 0
	for _, path := range files {
		if strings.HasSuffix(path, ".golden") {
			continue
		}
		n++
		t.Run(path, func(t *testing.T) {
			format, err := ParseFormat(filepath.Base(filepath.Dir(path)))
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			opt := Options{Format: format, Filename: filepath.Base(path)}
			if strings.Contains(filepath.Base(path), ".expand.") {
				opt.Expand = true
				opt.Env = envMap(map[string]string{"HOME": "/home/app", "MACHINE": "machine"})
			}
			var got golden
			res, err := Parse(bytes.NewReader(data), opt)
			if err != nil {
				l, ok := err.(ErrorList)
				if !ok {
					t.Fatalf("error %v is not an ErrorList", err)
				}
				for _, e := range l {
					got.Errors = append(got.Errors, e.Error())
				}
				for _, w := range res.Warnings {
					got.Warnings = append(got.Warnings, w.Code+": "+w.String())
				}
			} else {
				for _, e := range res.Entries {
					got.Entries = append(got.Entries, goldenEntry{e.Name, string(e.Value), fmt.Sprintf("%d:%d", e.Line, e.Column)})
				}
				for _, w := range res.Warnings {
					got.Warnings = append(got.Warnings, w.Code+": "+w.String())
				}
				// Whatever a fixture holds, it must survive the writers.
				for _, f := range []Format{Dotenv, JSON, format} {
					roundTrip(t, res.Entries, f, f == Docker || f == Systemd)
				}
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			goldenPath := path + ".golden"
			if *update {
				if err := os.WriteFile(goldenPath, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs from %s (run go test -update and review the diff):\n%s", path, goldenPath, out)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d fixtures found", n)
	}
}
