// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/remote"
)

// TestCommandFiles holds the package to its layout (package comment): the code of a command lives in
// cmd_<path>.go, a file whose words are the first words of the command's path ("-" and " " both
// written "_"): `ov secret history` in cmd_secret_history.go or cmd_secret.go, never in a file
// named for another command.
func TestCommandFiles(t *testing.T) {
	for _, c := range commandTable() {
		fn := runtime.FuncForPC(reflect.ValueOf(c.run).Pointer())
		file, _ := fn.FileLine(fn.Entry())
		base := filepath.Base(file)
		stem, ok := strings.CutPrefix(strings.TrimSuffix(base, ".go"), "cmd_")
		if !ok {
			t.Errorf("ov %s runs %s, in %s: not a cmd_<path>.go file", c.path, fn.Name(), base)
			continue
		}
		path := strings.NewReplacer(" ", "_", "-", "_").Replace(c.path)
		if path != stem && !strings.HasPrefix(path, stem+"_") {
			t.Errorf("ov %s runs %s, in %s: its file should be named for its path (cmd_%s.go or a prefix of it)", c.path, fn.Name(), base, path)
		}
	}
}

// TestDefaultMaxAge: the --max-age default of `ov run` and `ov agent serve` is remote's, written as a
// user types it.
func TestDefaultMaxAge(t *testing.T) {
	d, err := parseDuration(defaultMaxAge)
	if err != nil || d != remote.DefaultMaxAge {
		t.Fatalf("--max-age default %q = %v, %v; want remote.DefaultMaxAge (%v)", defaultMaxAge, d, err, remote.DefaultMaxAge)
	}
	if remote.DefaultMaxAge%(24*time.Hour) != 0 {
		t.Fatalf("remote.DefaultMaxAge %v is not whole days: defaultMaxAge cannot say it in days", remote.DefaultMaxAge)
	}
}
