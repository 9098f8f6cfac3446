// SPDX-License-Identifier: Apache-2.0

package testutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The rules of the house: which package may import what, for the whole module, in one place. The
// README's "Layout" section draws the same picture. Rules look at non-test code (go list's Imports
// and Deps); tests may reach further (a server test may decrypt what it stored, to prove it).
const mod = "github.com/opaquevault/opaquevault/"

// onlyImportedBy: a package (or a module path prefix) that only the listed packages may import directly.
var onlyImportedBy = []struct {
	pkg, why string
	allowed  []string
}{
	{mod + "internal/vault", "the key hierarchy: only the client side of the protocol and its front ends",
		[]string{"internal/remote", "internal/cli", "internal/doctor"}},
	{mod + "internal/secmem", "key material and decrypted values in memory: the key code, the reader that keeps verified values (remote's Memo) and the processes that hold keys",
		[]string{"internal/vault", "internal/remote", "credentials", "internal/cli", "daemon/agent"}},
	{"github.com/coreos/go-systemd/v22", "internal/sd is the one place that talks to systemd",
		[]string{"internal/sd"}},
	{"github.com/godbus/dbus/v5", "D-Bus: systemd (internal/sd), PolicyKit (daemon/polkit) and the agent's bus names",
		[]string{"internal/sd", "daemon/polkit", "daemon/polkit/polkittest", "daemon/agent"}},
	{mod + "daemon/agent", "the agent is a daemon: only `ov agent serve` (internal/cli) runs it in-process",
		[]string{"internal/cli"}},
	{mod + "daemon/server", "ov-server: only its main wires it",
		[]string{"cmd/ov-server"}},
	{mod + "daemon/polkit", "PolicyKit checks belong to the agent",
		[]string{"daemon/agent"}},
}

// neverReaches: a package whose transitive (non-test) dependencies must not include any of these
// (a path, or anything under it; a path ending in "!" means that package alone, not its children).
var neverReaches = []struct {
	pkg, why  string
	forbidden []string
}{
	{"cmd/ov", "ov does not link the MCP server: its packages' initialisation would be paid by every `ov run` (ov-mcp links it; ov is its own sandbox helper, internal/mcp/sandbox)",
		[]string{mod + "internal/mcp!", "github.com/modelcontextprotocol/go-sdk", "github.com/google/jsonschema-go", "encoding/gob"}},
	{"cmd/ov-server", "the server stores ciphertext and must never link decryption",
		[]string{mod + "internal/vault", mod + "internal/remote", mod + "internal/secmem", mod + "credentials",
			"golang.org/x/crypto/chacha20poly1305", "golang.org/x/crypto/argon2", "golang.org/x/crypto/hkdf"}},
	{"daemon/server", "the server stores ciphertext and must never link decryption",
		[]string{mod + "internal/vault", mod + "internal/remote", mod + "internal/secmem"}},
	{"internal/store", "storage holds ciphertext only", []string{mod + "internal/vault", mod + "internal/remote"}},
	{"internal/mcp", "MCP talks to the agent over its socket and never holds keys",
		[]string{mod + "internal/vault", mod + "internal/remote", mod + "internal/secmem"}},
	{"internal/dotenv", "the dotenv parser and writers know nothing of keys or the server",
		[]string{mod + "internal/vault", mod + "internal/remote", mod + "internal/api"}},
	{"internal/localapi", "the agent socket's wire format is shared by clients that hold no keys",
		[]string{mod + "internal/vault", mod + "internal/remote"}},
	{"internal/envelope", "wire formats without keys", []string{mod + "internal/vault", mod + "internal/secmem"}},
	{"internal/childenv", "building a child's environment needs no keys", []string{mod + "internal/vault"}},
}

// mustReach: dependencies a package must have, so that the rules above are about the real graph.
var mustReach = []struct {
	pkg  string
	deps []string
}{
	{"cmd/ov-server", []string{mod + "daemon/server", mod + "internal/envelope", mod + "internal/store"}},
	{"cmd/ov", []string{mod + "internal/cli", mod + "internal/mcp/sandbox", mod + "internal/vault"}},
	{"cmd/ov-mcp", []string{mod + "internal/mcp", "github.com/modelcontextprotocol/go-sdk/mcp"}},
}

// moduleDepsOnly: a package whose transitive dependencies inside this module are limited to these.
var moduleDepsOnly = []struct {
	pkg, why string
	allowed  []string
}{
	{"internal/names", "a leaf: every layer, the server included, imports it", nil},
	{"internal/secmem", "a leaf: locked memory", nil},
	{"internal/vault", "keys, KDF, seal and open; formats come from envelope",
		[]string{"internal/envelope", "internal/secmem", "internal/names"}},
	{"internal/envelope", "formats without keys", []string{"internal/names"}},
	{"internal/dotenv", "the dotenv parser and writers: text in, text out, with the one name rule", []string{"internal/names"}},
	{"credentials", "key files on disk", []string{"internal/secmem"}},
}

// directImportsNot: what a package's own files must not import (primitives, not just packages).
var directImportsNot = []struct {
	pkg, why  string
	forbidden []string
}{
	{"internal/envelope", "formats are parsed and built without any decryption, KDF or key-agreement primitive",
		[]string{"golang.org/x/crypto/chacha20poly1305", "golang.org/x/crypto/chacha20", "golang.org/x/crypto/argon2",
			"golang.org/x/crypto/hkdf", "crypto/hkdf", "crypto/cipher", "crypto/aes", "crypto/ecdh", "crypto/ed25519", "crypto/hpke"}},
}

type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// listModule returns the module's packages, keyed by their path inside the module ("internal/cli").
func listModule(t *testing.T) map[string]*goPackage {
	t.Helper()
	gobin, err := exec.LookPath("go") // go test puts $GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("skip: go command not found: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-json=ImportPath,Imports,Deps,Module", mod+"...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]*goPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, mod)] = &p
	}
	return pkgs
}

// matches reports whether path is pkg or inside it.
func matches(path, pkg string) bool { return path == pkg || strings.HasPrefix(path, pkg+"/") }

// checkLayering returns one line per broken rule.
func checkLayering(pkgs map[string]*goPackage) []string {
	var bad []string
	for name, p := range pkgs {
		for _, r := range onlyImportedBy {
			for _, imp := range p.Imports {
				if matches(imp, r.pkg) && !slices.Contains(r.allowed, name) && !matches(name, strings.TrimPrefix(r.pkg, mod)) {
					bad = append(bad, name+" imports "+imp+": "+r.why)
				}
			}
		}
		// No library under internal/ (or credentials) imports a daemon, except the rules above allow it.
		if strings.HasPrefix(name, "internal/") || name == "credentials" {
			for _, imp := range p.Imports {
				if rel := strings.TrimPrefix(imp, mod); rel != imp && strings.HasPrefix(rel, "daemon/") {
					allowed := false
					for _, r := range onlyImportedBy {
						allowed = allowed || matches(imp, r.pkg) && slices.Contains(r.allowed, name)
					}
					if !allowed {
						bad = append(bad, name+" imports "+imp+": libraries under internal/ never import a daemon")
					}
				}
			}
		}
	}
	for _, r := range neverReaches {
		p, ok := pkgs[r.pkg]
		if !ok {
			bad = append(bad, "no package "+r.pkg+" (the rule about it proves nothing)")
			continue
		}
		for _, d := range p.Deps {
			for _, f := range r.forbidden {
				if exact, ok := strings.CutSuffix(f, "!"); ok && d == exact || !ok && matches(d, f) {
					bad = append(bad, r.pkg+" depends on "+d+": "+r.why)
				}
			}
		}
	}
	for _, r := range moduleDepsOnly {
		p, ok := pkgs[r.pkg]
		if !ok {
			bad = append(bad, "no package "+r.pkg+" (the rule about it proves nothing)")
			continue
		}
		for _, d := range p.Deps {
			if rel := strings.TrimPrefix(d, mod); rel != d && !slices.Contains(r.allowed, rel) {
				bad = append(bad, r.pkg+" depends on "+d+": "+r.why)
			}
		}
	}
	for _, r := range directImportsNot {
		p, ok := pkgs[r.pkg]
		if !ok {
			bad = append(bad, "no package "+r.pkg+" (the rule about it proves nothing)")
			continue
		}
		for _, imp := range p.Imports {
			if slices.Contains(r.forbidden, imp) {
				bad = append(bad, r.pkg+" imports "+imp+": "+r.why)
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// TestLayering holds the whole module to the rules above.
func TestLayering(t *testing.T) {
	pkgs := listModule(t)
	// The listing must be real: the packages the rules talk about are there, with their dependencies.
	for _, r := range mustReach {
		p := pkgs[r.pkg]
		if p == nil {
			t.Fatalf("go list does not show %s; the checks would prove nothing", r.pkg)
		}
		for _, d := range r.deps {
			if !slices.Contains(p.Deps, d) {
				t.Errorf("%s does not depend on %s: the listing (or the binary) is wrong", r.pkg, d)
			}
		}
	}
	for _, b := range checkLayering(pkgs) {
		t.Error(b)
	}
}

// TestLayeringCatchesViolations breaks each kind of rule in a copy of the real graph and requires
// checkLayering to name it: a rule that cannot fail proves nothing.
func TestLayeringCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(map[string]*goPackage)
		want string
	}{
		{"server links vault", func(m map[string]*goPackage) {
			m["daemon/server"].Deps = append(m["daemon/server"].Deps, mod+"internal/vault")
		}, "daemon/server depends on " + mod + "internal/vault"},
		{"mcp imports vault", func(m map[string]*goPackage) {
			m["internal/mcp"].Imports = append(m["internal/mcp"].Imports, mod+"internal/vault")
		}, "internal/mcp imports " + mod + "internal/vault"},
		{"cli imports go-systemd", func(m map[string]*goPackage) {
			m["internal/cli"].Imports = append(m["internal/cli"].Imports, "github.com/coreos/go-systemd/v22/daemon")
		}, "internal/cli imports github.com/coreos/go-systemd/v22/daemon"},
		{"localapi imports a daemon", func(m map[string]*goPackage) {
			m["internal/localapi"].Imports = append(m["internal/localapi"].Imports, mod+"daemon/server/x")
		}, "internal/localapi imports " + mod + "daemon/server/x: libraries under internal/ never import a daemon"},
		{"names grows a dependency", func(m map[string]*goPackage) {
			m["internal/names"].Deps = append(m["internal/names"].Deps, mod+"internal/envelope")
		}, "internal/names depends on " + mod + "internal/envelope"},
		{"ov links the MCP server", func(m map[string]*goPackage) {
			m["cmd/ov"].Deps = append(m["cmd/ov"].Deps, mod+"internal/mcp")
		}, "cmd/ov depends on " + mod + "internal/mcp:"},
		{"envelope imports a cipher", func(m map[string]*goPackage) {
			m["internal/envelope"].Imports = append(m["internal/envelope"].Imports, "crypto/cipher")
		}, "internal/envelope imports crypto/cipher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs := listModule(t)
			tc.edit(pkgs)
			found := false
			for _, b := range checkLayering(pkgs) {
				found = found || strings.HasPrefix(b, tc.want)
			}
			if !found {
				t.Errorf("checkLayering missed %q", tc.want)
			}
		})
	}
}
