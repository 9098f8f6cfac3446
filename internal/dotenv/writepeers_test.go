// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// writerCorpus is values a service keeps in its environment.
var writerCorpus = []string{
	"plain-value_1.2/3:4@5%6+7,8=9",
	"with spaces",
	"a#b", "a #b", "#start",
	"pa$$word", "$HOME", "${HOME}", "cost $5", "$(id)",
	`C:\dir\`, `a\`, `\`, `a\\`, `a\b`, `a\nb`, `a\\b`,
	"it's", `say "hi"`, `both ' and "`, `it's a\`,
	"line1\nline2", "crlf\r\n",
	" padded ", "tab\tin",
	"`backticks`", "{\"json\": [1, 2]}",
	"ünïcödé ✓",
}

// TestWriterPeers writes every corpus value between two other lines (the
// one after is unquoted and holds both quotes, to catch a reader that runs
// on to the next quote) and reads the file back with the models of the peer
// libraries. Plain values (also followed by one backslash) read back the
// same in every peer; single-quoted ones in every peer but python-dotenv
// for "${" and "\\"; what the double-quoted ones lose, peer by peer, is
// listed here and in docs/dotenv-dialect.md ("Writers").
func TestWriterPeers(t *testing.T) {
	want := map[string]string{
		"go-1.5": `double: "C:\\dir\\" "a\\\\" "it's a\\"`,
		"node":   `double: "C:\\dir\\" "a\\\\" "both ' and \"" "it's a\\"`,
		"py":     `single: "${HOME}" "a\\\\b"; double: "C:\\dir\\" "a\\\\" "it's a\\"`,
		"rb":     `double: "line1\nline2" "crlf\r\n"`,
	}
	misread := map[string]map[string][]string{} // peer -> form -> values
	for _, v := range writerCorpus {
		var buf bytes.Buffer
		entries := []Entry{{Name: "P", Value: []byte("1")}, {Name: "A", Value: []byte(v)}}
		if err := Write(&buf, entries, Dotenv); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("Z=x'y\"z\n")
		line := strings.SplitN(buf.String(), "\n", 3)[1]
		form := "plain"
		switch {
		case strings.HasPrefix(line, "A='"):
			form = "single"
		case strings.HasPrefix(line, `A="`):
			form = "double"
		}
		for _, p := range peerModels {
			got := p.read(buf.String())
			if got["A"] == v && got["P"] == "1" && got["Z"] == `x'y"z` {
				continue
			}
			if misread[p.name] == nil {
				misread[p.name] = map[string][]string{}
			}
			misread[p.name][form] = append(misread[p.name][form], fmt.Sprintf("%q", v))
			t.Logf("%s reads %q (%s) as %q", p.name, v, form, got["A"])
		}
	}
	for _, p := range peerModels {
		var parts []string
		for _, form := range []string{"plain", "single", "double"} {
			if l := misread[p.name][form]; len(l) > 0 {
				parts = append(parts, form+": "+strings.Join(l, " "))
			}
		}
		if got := strings.Join(parts, "; "); got != want[p.name] {
			t.Errorf("%s misreads\n%s\nwant\n%s", p.name, got, want[p.name])
		}
	}
}
