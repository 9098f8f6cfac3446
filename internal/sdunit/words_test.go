// SPDX-License-Identifier: Apache-2.0

package sdunit

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func texts(ws []Word) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Text)
	}
	return out
}

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: `/bin/a b  c`, want: []string{"/bin/a", "b", "c"}},
		{in: `"a b" 'c d' e"f g"h`, want: []string{"a b", "c d", "ef gh"}},
		{in: `"a \"q\" \\ \n" '\x41\101\u00e9'`, want: []string{"a \"q\" \\ \n", "AAé"}},
		{in: `a\sb`, want: []string{"a b"}},
		{in: `"unterminated`, err: "unterminated"},
		{in: `bad\q`, err: "invalid escape"},
		{in: `nul\x00`, err: "invalid escape"},
		{in: ``, want: nil},
	} {
		got, err := SplitWords(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("SplitWords(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("SplitWords(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(texts(got), c.want) {
			t.Errorf("SplitWords(%q) = %q, want %q", c.in, texts(got), c.want)
		}
	}
}

// TestQuoteRoundTrip: a quoted word reads back as itself, and neither a specifier nor a variable
// in it survives unescaped.
func TestQuoteRoundTrip(t *testing.T) {
	for _, w := range []string{"/usr/bin/ov", "my app", `a"b`, `back\slash`, "100%", "$HOME", "${X}", "tab\there", "new\nline", "é", "a'b", "semi;colon", "-dash"} {
		q := Quote(w)
		ws, err := SplitWords(q)
		if err != nil || len(ws) != 1 {
			t.Errorf("Quote(%q) = %s: split %v %v", w, q, ws, err)
			continue
		}
		text := ws[0].Text
		// systemd then expands specifiers and variables: %% and $$ must be all that is left.
		text = strings.ReplaceAll(text, "%%", "%")
		text = strings.ReplaceAll(text, "$$", "$")
		if text != w {
			t.Errorf("Quote(%q) = %s reads back as %q", w, q, text)
		}
		x := &Exec{Command: q}
		if refs := x.VarRefs(); len(refs) > 0 {
			t.Errorf("Quote(%q) = %s leaves variables %v", w, q, refs)
		}
	}
}

func TestVarRefs(t *testing.T) {
	for _, c := range []struct {
		prefix, cmd string
		want        []string
	}{
		{"", `/bin/a $FOO ${BAR}x $$NOT $1 "${Q}"`, []string{"FOO", "BAR", "Q"}},
		{":", `/bin/a $FOO`, nil},
		{"-", `/bin/a --x=${A_B}`, []string{"A_B"}},
	} {
		x := &Exec{Prefix: c.prefix, Command: c.cmd}
		if got := x.VarRefs(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("VarRefs(%q%q) = %q, want %q", c.prefix, c.cmd, got, c.want)
		}
	}
}

func TestParseUnit(t *testing.T) {
	src := "# c\n[Service]\nExecStart=/bin/a \\\n  b \\\n; comment in continuation\n  c\nEnvironment=X=1\n  ; c\n\n[Install]\nWantedBy=x\n"
	es, err := Parse("u", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[0].Value != "/bin/a b c" || es[0].Line != 3 || es[1].Key != "Environment" || es[2].Section != "Install" {
		t.Errorf("Parse = %+v", es)
	}
	for _, bad := range []string{"X=1\n", "[Service]\nnoequals\n", "[Service\n", "[Service]\n=v\n"} {
		if _, err := Parse("u", []byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	// An escaped backslash at the end does not continue the line.
	es, err = Parse("u", []byte("[S]\nA=x\\\\\nB=y\n"))
	if err != nil || len(es) != 2 {
		t.Errorf("escaped backslash: %+v %v", es, err)
	}
}

func TestSpecifiers(t *testing.T) {
	sp := SpecifiersFor("app@blue.service", "host.example")
	got, err := sp.Expand("%n %N %p %i %H %l 100%%")
	if err != nil || got != "app@blue.service app@blue app blue host.example host 100%" {
		t.Errorf("Expand = %q, %v", got, err)
	}
	if _, err := sp.Expand("%Z"); err == nil {
		t.Error("unknown specifier accepted")
	}
}

func TestLoadMaskedAndMissing(t *testing.T) {
	root := t.TempDir()
	if _, err := Load(root, "nope.service"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing unit: %v", err)
	}
	d := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(d, "m.service")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(root, "m.service"); err == nil || !strings.Contains(err.Error(), "masked") {
		t.Errorf("masked unit: %v", err)
	}
	for _, bad := range []string{"../x.service", "x.socket", ""} {
		if _, err := Load(root, bad); err == nil {
			t.Errorf("Load(%q) accepted", bad)
		}
	}
}
