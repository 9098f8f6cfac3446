// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// flagUsages formats a flag set as "  -h, --name WORD   usage (default X)", one flag a line. WORD is
// [argName]'s; a duration's default is shown as it would be typed (8h, not 8h0m0s).
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, right string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		typ := f.Value.Type()
		if typ != "bool" {
			left += " " + argName(f)
		}
		right := f.Usage
		d := f.DefValue
		if typ == "duration" {
			d = typedDuration(d)
		}
		if d != "" && d != "false" && d != "[]" && d != "0" && typ != "bool" {
			right += fmt.Sprintf(" (default %s)", d)
		}
		rows = append(rows, row{left, right})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s   %s\n", width, r.left, r.right)
	}
	return b.String()
}

// typedDuration shortens a time.Duration's String ("8h0m0s", "10m0s") to what a user types ("8h",
// "10m"); anything else is returned as it is.
func typedDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || d == 0 {
		return s
	}
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// placeholderAnnotation names a flag's argument where [argName]'s rules do not fit (see [placeholder]).
const placeholderAnnotation = "ov-placeholder"

// placeholder sets the word that names flag's argument in help, such as VERSION for `secret
// rollback --to`; the usage line of the command should use the same word.
func placeholder(fs *pflag.FlagSet, flag, word string) {
	_ = fs.SetAnnotation(flag, placeholderAnnotation, []string{word})
}

// argName names a flag's argument by what it holds, the same word for the same thing in every
// command: FILE for a file ov reads or writes (the machine key included), DIR, PATH for a socket or a
// program, DURATION (typed as 90m, 24h or 7d), N for a count, and the flag's own word (APP, ENV, USER,
// UNIT, EMAIL) where that says it. A command's usage line uses the same words. TestHelpPlaceholders
// fails on a fallback (the flag's name upper-cased) or a Go type name.
func argName(f *pflag.Flag) string {
	if p := f.Annotations[placeholderAnnotation]; len(p) == 1 {
		return p[0]
	}
	typ := f.Value.Type()
	switch {
	case f.Name == "format":
		return "FORMAT"
	case f.Name == "approve":
		return "MODE"
	case typ == "duration" || f.Name == "max-age" || f.Name == "expires" || f.Name == "since" || strings.HasSuffix(f.Name, "timeout"):
		return "DURATION"
	case f.Name == "root" || strings.HasSuffix(f.Name, "-dir"):
		return "DIR"
	case strings.HasSuffix(f.Name, "file") || f.Name == "config" || f.Name == "out" || f.Name == "emergency-kit" ||
		f.Name == "machine-key" || f.Name == "cache":
		return "FILE"
	case f.Name == "server":
		return "URL"
	case f.Name == "secrets":
		return "NAME,..."
	case strings.HasSuffix(f.Name, "credential") || strings.HasSuffix(f.Name, "name") || f.Name == "label":
		return "NAME"
	case f.Name == "binary" || f.Name == "socket":
		return "PATH"
	case f.Name == "user" || f.Name == "owner":
		return "USER"
	case f.Name == "allow-command":
		return "PATTERN"
	case f.Name == "max-output":
		return "BYTES"
	case f.Name == "before":
		return "ID"
	case f.Name == "scope":
		return "APP/ENV"
	case f.Name == "allow":
		return "PROGRAM"
	case f.Name == "app" || f.Name == "env" || f.Name == "email" || f.Name == "unit":
		return strings.ToUpper(f.Name)
	case strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint") || strings.HasPrefix(typ, "float"):
		return "N"
	}
	return strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// helpGroups orders the commands of `ov --help` by what a user comes for, as gh does; a command
// belongs to the first group with a prefix of its path.
var helpGroups = []struct {
	title    string
	prefixes []string
}{
	{"Secrets", []string{"secret ", "app ", "env "}},
	{"Run programs with their secrets", []string{"run", "env-from-credentials"}},
	{"Account and devices", []string{"auth register", "auth login", "auth logout", "auth status", "auth change-password", "auth devices"}},
	{"Machine keys (unattended services)", []string{"auth derive-machine-key", "auth machine-key"}},
	{"Agent (one password per login, or a machine key under systemd)", []string{"agent "}},
	{"AI assistants", []string{"mcp "}},
}

// printCommandGroups writes the visible commands under their group titles.
func printCommandGroups(w io.Writer) {
	cs := visible()
	width := 0
	for _, c := range cs {
		width = max(width, len(c.path))
	}
	done := map[*command]bool{}
	section := func(title string, match func(*command) bool) {
		first := true
		for _, c := range cs {
			if done[c] || !match(c) {
				continue
			}
			if first {
				fmt.Fprintf(w, "\n%s:\n", title)
				first = false
			}
			done[c] = true
			fmt.Fprintf(w, "  %-*s  %s\n", width, c.path, c.summary)
		}
	}
	for _, g := range helpGroups {
		section(g.title, func(c *command) bool {
			for _, p := range g.prefixes {
				if c.path == strings.TrimSpace(p) || strings.HasPrefix(c.path, p) {
					return true
				}
			}
			return false
		})
	}
	var rest []*command
	for _, c := range cs {
		if !done[c] {
			rest = append(rest, c)
		}
	}
	fmt.Fprintf(w, "\nOther:\n")
	for _, c := range rest {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.path, c.summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n  %-*s  %s\n", width, "help COMMAND", "show a command's flags and examples", width, "version", "print the version")
}

// passwordNotNeeded accepts --password-file on a command that needs no password, so that a script
// can pass the same flags to every command; the file is not read. The flag is hidden from help.
func passwordNotNeeded(fs *pflag.FlagSet) {
	fs.String("password-file", "", "not needed by this command: accepted and not read")
	_ = fs.MarkHidden("password-file")
}
