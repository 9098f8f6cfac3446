// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// flagUsages formats a flag set as "  -h, --name TYPE   usage (default X)", one flag a line.
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
		switch typ {
		case "bool":
		case "stringArray", "stringSlice":
			left += " " + argName(f) // repeatable: the usage says so
		case "int", "uint", "int64", "uint64":
			left += " N"
		default:
			left += " " + argName(f)
		}
		right := f.Usage
		if d := f.DefValue; d != "" && d != "false" && d != "[]" && d != "0" && typ != "bool" {
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

// argName names a flag's argument after the flag: --password-file FILE, --app APP, a file, a URL,
// a duration or a credential name by what it holds.
func argName(f *pflag.Flag) string {
	switch {
	case f.Name == "format" && strings.Contains(f.Usage, "dotenv"):
		return "FORMAT"
	case strings.HasSuffix(f.Name, "file") || f.Name == "config" || f.Name == "out" || f.Name == "emergency-kit" ||
		f.Name == "machine-key" || f.Name == "unit-dir" || f.Name == "cache":
		return "FILE"
	case f.Name == "server":
		return "URL"
	case f.Name == "secrets":
		return "NAME,..."
	case strings.HasSuffix(f.Name, "credential") || strings.HasSuffix(f.Name, "name") || f.Name == "label":
		return "NAME"
	case f.Name == "binary" || f.Name == "socket":
		return "PATH"
	case f.Name == "root":
		return "DIR"
	case strings.HasPrefix(f.Name, "rate") || strings.HasPrefix(f.Name, "max-output"):
		return "N"
	case f.Name == "max-age" || f.Name == "expires" || strings.HasSuffix(f.Name, "timeout"):
		return "DURATION"
	case f.Name == "scope":
		return "APP/ENV"
	case f.Name == "allow":
		return "PROGRAM"
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
