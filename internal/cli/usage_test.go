// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// placeholderWords is every word that may name a flag's argument in help (see argName): one word for
// one kind of thing in every command.
var placeholderWords = map[string]bool{
	"FILE": true, "DIR": true, "PATH": true, "URL": true, "DURATION": true, "N": true, "BYTES": true, "ID": true,
	"NAME": true, "NAME,...": true, "APP": true, "ENV": true, "APP/ENV": true, "USER": true, "EMAIL": true, "UNIT": true,
	"PATTERN": true, "PROGRAM": true, "FORMAT": true, "MODE": true, "VERSION": true, "SEQ": true,
}

// goTypeNames are what pflag prints for a flag without a placeholder.
var goTypeNames = []string{"string", "stringArray", "stringSlice", "duration", "int", "int64", "uint64", "float", "float64", "bool"}

var (
	flagLineRE  = regexp.MustCompile(`^  (?:-\w, |    )--([a-z0-9-]+)(?: (\S+))?   `)
	usageFlagRE = regexp.MustCompile(`--([a-z0-9-]+)(?: ([A-Za-z][^\s\[\]()]*))?`)
	defaultRE   = regexp.MustCompile(`\(default (\d+h\d+m\d+s|\d+m\d+s|\d+h0m)\)`)
)

// helpOf returns `ov help PATH` (or the global help for "").
func helpOf(t *testing.T, path string) (string, *command) {
	t.Helper()
	var out, errOut bytes.Buffer
	args := append([]string{"help"}, strings.Fields(path)...)
	a := &App{io: Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}, env: func(string) string { return "" }, goos: goosName()}
	a.log = logrus.New()
	a.log.SetOutput(io.Discard)
	if err := a.dispatch(context.Background(), args); err != nil {
		t.Fatalf("ov help %s: %v", path, err)
	}
	return out.String(), a.cmd
}

// TestHelpPlaceholders walks the help of every command (and the global help) and fails on a flag
// argument named by pflag's fallbacks (the upper-cased flag name, a Go type name) or by a word outside
// the vocabulary, on a duration default shown as Go prints it (8h0m0s), and on a usage line whose
// flag words differ from the flag list's.
func TestHelpPlaceholders(t *testing.T) {
	paths := []string{""}
	for _, c := range commandTable() {
		paths = append(paths, c.path)
	}
	for _, path := range paths {
		help, c := helpOf(t, path)
		if path != "" && c == nil {
			t.Fatalf("ov help %s: no command", path)
		}
		words := map[string]string{} // flag -> placeholder ("" for a bool)
		for _, line := range strings.Split(help, "\n") {
			m := flagLineRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name, word := m[1], m[2]
			words[name] = word
			if m := defaultRE.FindString(line); m != "" {
				t.Errorf("ov %s --help: --%s shows %s: durations are shown as typed (8h, 10m)", path, name, m)
			}
			if word == "" {
				continue
			}
			if word == strings.ToUpper(strings.ReplaceAll(name, "-", "_")) && strings.Contains(name, "-") {
				t.Errorf("ov %s --help: --%s %s: the flag's name is not a placeholder", path, name, word)
			}
			for _, g := range goTypeNames {
				if word == g {
					t.Errorf("ov %s --help: --%s %s: a Go type name is not a placeholder", path, name, word)
				}
			}
			if !placeholderWords[word] {
				t.Errorf("ov %s --help: --%s %s: not a placeholder word of argName (add it there, and here, if it is one)", path, name, word)
			}
		}
		if len(words) == 0 {
			t.Fatalf("ov %s --help: no flags found in:\n%s", path, help)
		}
		if c == nil {
			continue
		}
		for _, m := range usageFlagRE.FindAllStringSubmatch(c.usage, -1) {
			name, word := m[1], m[2]
			want, ok := words[name]
			if word != want {
				word = strings.TrimSuffix(word, "...") // repeatable: --allow-command PATTERN...
			}
			switch {
			case !ok:
				t.Errorf("ov %s: the usage line names --%s, which the command does not have", path, name)
			case word == "" && want != "" && name != "json":
				// "[--env ENV...]]" and "(--machine-key FILE | ..." always give the word; a bare flag is a bool
				t.Errorf("ov %s: the usage line gives --%s without its %s", path, name, want)
			case word != "" && want == "":
				t.Errorf("ov %s: the usage line gives the bool --%s an argument %q", path, name, word)
			case word == "" || word == want || strings.HasPrefix(word, want+"|"):
			case strings.ContainsAny(word, "abcdefghijklmnopqrstuvwxyz") && (want == "FORMAT" || want == "MODE"):
				// the usage line lists the choices (dotenv|docker, tty|none) that the flag list names
			default:
				t.Errorf("ov %s: the usage line says --%s %s, the flag list --%s %s", path, name, word, name, want)
			}
		}
	}
}

func TestTypedDuration(t *testing.T) {
	for in, want := range map[string]string{"8h0m0s": "8h", "10m0s": "10m", "1h30m0s": "1h30m", "1m30s": "1m30s", "0s": "0s", "30d": "30d", "45s": "45s"} {
		if got := typedDuration(in); got != want {
			t.Errorf("typedDuration(%q) = %q, want %q", in, got, want)
		}
	}
}
