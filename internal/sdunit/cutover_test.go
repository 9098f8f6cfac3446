// SPDX-License-Identifier: Apache-2.0

package sdunit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/opaquevault/opaquevault/internal/dotenv"
)

var update = flag.Bool("update", false, "rewrite the golden want.conf sections")

// TestCutoverGolden runs each testdata/cutover/*.txtar: the files under root/ form an image, the
// vault section holds what the vault has (systemd EnvironmentFile= syntax), args names the unit,
// app and env; want.conf is the drop-in (golden), want.err the refusal, want.vars the comparison.
func TestCutoverGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/cutover/*.txtar")
	if len(files) == 0 {
		t.Fatal("no test cases")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			sec := map[string][]byte{}
			for _, af := range ar.Files {
				if rest, ok := strings.CutPrefix(af.Name, "root/"); ok {
					p := filepath.Join(root, rest)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if target, ok := strings.CutPrefix(string(af.Data), "symlink "); ok {
						if err := os.Symlink(strings.TrimSpace(target), p); err != nil {
							t.Fatal(err)
						}
						continue
					}
					if err := os.WriteFile(p, af.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				sec[af.Name] = af.Data
			}
			args := strings.Fields(string(sec["args"]))
			if len(args) != 3 {
				t.Fatalf("args: want UNIT APP ENV")
			}
			res, err := dotenv.Parse(bytes.NewReader(sec["vault"]), dotenv.Options{Format: dotenv.Systemd})
			if err != nil {
				t.Fatal(err)
			}
			vault := map[string][]byte{}
			for _, e := range res.Entries {
				vault[e.Name] = e.Value
			}
			got, err := cutover(root, args[0], args[1], args[2], vault, sec["credentials"] != nil,
				strings.TrimSpace(string(sec["credentials"])) == "files-only")
			if want, ok := sec["want.err"]; ok {
				if err == nil {
					t.Fatalf("no error; drop-in:\n%s", got)
				}
				for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
					if !strings.Contains(err.Error(), line) {
						t.Errorf("error %q\ndoes not contain %q", err, line)
					}
				}
				// Never a value in an error.
				for _, v := range vault {
					if len(v) >= 4 && strings.Contains(err.Error(), string(v)) {
						t.Errorf("error contains a vault value: %q", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "want.conf" {
						ar.Files[i].Data = []byte(got)
					}
				}
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(sec["want.conf"]); got != want {
				t.Errorf("drop-in:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// cutover is what `ov systemd cutover --root` does, minus writing: load, read the env files,
// compare, refuse or render, check.
func cutover(root, unit, app, env string, vault map[string][]byte, creds, filesOnly bool) (string, error) {
	u, err := Load(root, unit, DropInName)
	if err != nil {
		return "", err
	}
	s, err := u.Service()
	if err != nil {
		return "", err
	}
	sp := SpecifiersFor(unit, "testhost")
	files, err := ReadEnvFiles(root, s, sp)
	if err != nil {
		return "", err
	}
	defer Wipe(files)
	vars := Compare(Sources(s, sp, files), func(n string) ([]byte, bool) { v, ok := vault[n]; return v, ok })
	if r := Refused(vars); len(r) > 0 {
		return "", RefusalError(unit, app, env, r)
	}
	p := &Plan{Unit: unit, App: app, Env: env, OvPath: "/usr/bin/ov", MachineKey: "/etc/ov/" + app + ".key", Vars: vars, Credentials: creds, FilesOnly: filesOnly}
	if creds {
		p.MachineKey = ""
	}
	d, err := p.Render(s)
	if err != nil {
		return "", err
	}
	if err := p.Check(u, d); err != nil {
		return "", err
	}
	if creds {
		d += "--- " + PolicyPath(unit) + "\n" + p.Policy()
	}
	return d, nil
}
