// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
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
		case "string":
			left += " " + argName(f)
		default:
			left += " " + typ
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

// argName names a string flag's argument after the flag: --password-file FILE, --app APP.
func argName(f *pflag.Flag) string {
	switch {
	case strings.HasSuffix(f.Name, "file") || f.Name == "config" || f.Name == "out" || f.Name == "emergency-kit":
		return "FILE"
	case f.Name == "server":
		return "URL"
	case f.Name == "secrets":
		return "NAME,..."
	}
	return strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}
