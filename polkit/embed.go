// SPDX-License-Identifier: Apache-2.0

// Package polkit holds the agent's authorization files: the polkit policy
// com.opaquevault.policy (actions com.opaquevault.agent.lock, .reload and
// .install; allow_any=no, allow_active=auth_admin_keep), shipped as is by
// the packages, and the D-Bus bus policy for com.opaquevault.Agent1, which
// names the agent's user and is rendered by `ov agent install`.
//
// It holds data only; daemon/polkit is the code that asks polkitd.
package polkit

import (
	"bytes"
	"embed"
	"fmt"
	"regexp"
	"sync"
	"text/template"
)

// The installed names of the files.
const (
	PolicyFile    = "com.opaquevault.policy"      // /usr/share/polkit-1/actions/
	BusPolicyFile = "com.opaquevault.Agent1.conf" // /etc/dbus-1/system.d/
)

//go:embed com.opaquevault.policy com.opaquevault.Agent1.conf.in
var files embed.FS

// Policy returns the polkit policy file.
func Policy() []byte {
	b, err := files.ReadFile(PolicyFile)
	if err != nil {
		panic("polkit: embedded policy missing: " + err.Error())
	}
	return b
}

// OwnedPolicy returns the polkit policy with user named as the owner of
// every action (annotation org.freedesktop.policykit.owner). polkitd answers
// CheckAuthorization about other users' subjects only for callers that are
// root or an action's owner; the agent runs as user, so without this, Lock
// and Reload over D-Bus are denied to everyone but user's own processes
// (polkitd refuses to answer, and the agent denies).
func OwnedPolicy(user string) ([]byte, error) {
	if len(user) > 32 || !userName().MatchString(user) {
		return nil, fmt.Errorf("render polkit policy: user name %q not allowed", user)
	}
	ann := "    <annotate key=\"org.freedesktop.policykit.owner\">unix-user:" + user + "</annotate>\n    <defaults>"
	return bytes.ReplaceAll(Policy(), []byte("    <defaults>"), []byte(ann)), nil
}

// busPolicy and userName are built on first use, not at start-up: every ov command links this package.
var busPolicy = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(files, BusPolicyFile+".in"))
})

// userName is what may appear in user="…": a POSIX user name.
var userName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*[$]?$`) })

// BusPolicy returns the D-Bus policy that lets user own
// com.opaquevault.Agent1 and everyone call Status, Introspect, Lock and
// Reload (the last two then checked by polkit).
func BusPolicy(user string) ([]byte, error) {
	if len(user) > 32 || !userName().MatchString(user) {
		return nil, fmt.Errorf("render D-Bus policy: user name %q not allowed", user)
	}
	var b bytes.Buffer
	if err := busPolicy().Execute(&b, struct{ User string }{user}); err != nil {
		return nil, fmt.Errorf("render D-Bus policy: %w", err)
	}
	return b.Bytes(), nil
}
