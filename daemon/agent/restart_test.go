// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/daemon/agent"
)

func TestParseRestartPolicy(t *testing.T) {
	p, err := agent.ParseRestartPolicy("myapp.service", strings.NewReader(`
# restart myapp when its database or payment secrets change
app = myapp
env = production
names = STRIPE_SECRET_KEY, DATABASE_URL DATABASE_URL
action = reload
interval = 30s
order = 3
timeout = 2m
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Unit != "myapp.service" || p.App != "myapp" || p.Env != "production" || p.Action != agent.ReloadAction ||
		p.Interval != 30*time.Second || p.Order != 3 || p.Timeout != 2*time.Minute || p.All ||
		strings.Join(p.Names, ",") != "DATABASE_URL,STRIPE_SECRET_KEY" {
		t.Fatalf("parsed %+v", p)
	}
	if !p.Uses("DATABASE_URL") || p.Uses("GREETING") {
		t.Fatal("Uses is wrong")
	}
	for _, unit := range []string{"a.service", strings.Repeat("a", 240) + ".service", `x-y_z:1.2@inst\x2d.service`} {
		if _, err := agent.ParseRestartPolicy(unit, strings.NewReader("app=a\nenv=e\nnames=X\n")); err != nil {
			t.Errorf("%q: %v", unit, err)
		}
	}
	all, err := agent.ParseRestartPolicy("w@1.service", strings.NewReader("app=a\nenv=e\nnames=*\n"))
	if err != nil || !all.All || !all.Uses("ANY") || all.Action != agent.RestartAction || all.Interval != agent.DefaultRestartInterval {
		t.Fatalf("names=*: %+v, %v", all, err)
	}
	for name, tc := range map[string]struct{ unit, text string }{
		"unknown key":    {"a.service", "app=a\nenv=e\nnames=X\nuser=root\n"},
		"no names":       {"a.service", "app=a\nenv=e\n"},
		"empty names":    {"a.service", "app=a\nenv=e\nnames= , \n"},
		"bad action":     {"a.service", "app=a\nenv=e\nnames=X\naction=stop\n"},
		"twice":          {"a.service", "app=a\napp=b\nenv=e\nnames=X\n"},
		"no value":       {"a.service", "app=a\nenv=e\nnames=X\norder\n"},
		"short interval": {"a.service", "app=a\nenv=e\nnames=X\ninterval=10ms\n"},
		"not a service":  {"a.socket", "app=a\nenv=e\nnames=X\n"},
		"path in unit":   {"../a.service", "app=a\nenv=e\nnames=X\n"},
		"space in unit":  {"a b.service", "app=a\nenv=e\nnames=X\n"},
		"empty stem":     {".service", "app=a\nenv=e\nnames=X\n"},
		"stem too long":  {strings.Repeat("a", 241) + ".service", "app=a\nenv=e\nnames=X\n"},
		"non-ASCII unit": {"é.service", "app=a\nenv=e\nnames=X\n"},
		"newline":        {"a\n.service", "app=a\nenv=e\nnames=X\n"},
	} {
		if _, err := agent.ParseRestartPolicy(tc.unit, strings.NewReader(tc.text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Whoever can write a policy chooses which units the agent restarts: only root-owned files that no
// one else can write are taken. The attacks are those of the agent's own (unprivileged) user.
func TestLoadRestartPoliciesRefusesWhatRootDidNotWrite(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(safeDir(t), "restart.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("app = myapp\nenv = production\nnames = DATABASE_URL\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("good.service.conf", 0o644, 0)
	write("theirs.service.conf", 0o644, nobody)    // written by the agent's user
	write("writable.service.conf", 0o664, 0)       // root's, but group-writable
	outside := filepath.Join(safeDir(t), "x.conf") // a link to a file elsewhere
	if err := os.WriteFile(outside, []byte("app = myapp\nenv = production\nnames = *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.service.conf")); err != nil {
		t.Fatal(err)
	}
	write("README", 0o644, 0) // not a .conf: ignored

	ps, errs := agent.LoadRestartPolicies(dir)
	if len(ps) != 1 || ps[0].Unit != "good.service" {
		t.Fatalf("loaded %+v", ps)
	}
	if len(errs) != 3 {
		t.Fatalf("refused %d files, want 3: %v", len(errs), errs)
	}
	msgs := errors.Join(errs...).Error()
	for _, want := range []string{"theirs.service.conf: owned by uid 65534, not root", "writable.service.conf: mode 0664", "link.service.conf"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("no %q in %s", want, msgs)
		}
	}

	// A directory the agent's user owns is refused as a whole.
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if ps, errs := agent.LoadRestartPolicies(dir); len(ps) != 0 || len(errs) != 1 {
		t.Fatalf("directory owned by another uid: %+v, %v", ps, errs)
	}
	// No directory: no policies, no error.
	if ps, errs := agent.LoadRestartPolicies(filepath.Join(dir, "none")); len(ps) != 0 || len(errs) != 0 {
		t.Fatalf("missing directory: %+v, %v", ps, errs)
	}
}
