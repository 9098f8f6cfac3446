// SPDX-License-Identifier: Apache-2.0

//go:build linux

package polkit_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/opaquevault/opaquevault/daemon/polkit"
	"github.com/opaquevault/opaquevault/daemon/polkit/polkittest"
	policyfiles "github.com/opaquevault/opaquevault/polkit"
)

// systemd's action, as /usr/share/polkit-1/actions/org.freedesktop.systemd1.policy declares it.
const manageUnits = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE policyconfig PUBLIC "-//freedesktop//DTD PolicyKit Policy Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/PolicyKit/1/policyconfig.dtd">
<policyconfig>
  <action id="org.freedesktop.systemd1.manage-units">
    <description>Manage system services or other units</description>
    <message>Authentication is required to manage system services or other units.</message>
    <defaults>
      <allow_any>auth_admin</allow_any>
      <allow_inactive>auth_admin</allow_inactive>
      <allow_active>auth_admin_keep</allow_active>
    </defaults>
  </action>
</policyconfig>
`

// checkUnit asks polkitd what systemd asks when uid's process calls a job method on unit.
func checkUnit(t *testing.T, c *dbus.Conn, pid int32, uid uint32, unit, verb string) bool {
	t.Helper()
	st, err := polkit.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	subj := struct {
		Kind    string
		Details map[string]dbus.Variant
	}{"unix-process", map[string]dbus.Variant{
		"pid": dbus.MakeVariant(uint32(pid)), "start-time": dbus.MakeVariant(st), "uid": dbus.MakeVariant(int32(uid)),
	}}
	var res struct {
		IsAuthorized bool
		IsChallenge  bool
		Details      map[string]string
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Object("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority").CallWithContext(ctx,
		"org.freedesktop.PolicyKit1.Authority.CheckAuthorization", 0, subj, "org.freedesktop.systemd1.manage-units",
		map[string]string{"unit": unit, "verb": verb}, uint32(0), "").Store(&res)
	if err != nil {
		t.Fatalf("check %s %s: %v", verb, unit, err)
	}
	return res.IsAuthorized
}

// The rule `ov agent install` writes, in a real polkitd: the agent's user may try-restart (or
// reload-or-try-restart) the units with a restart policy and nothing else; no other user gains
// anything. The attacks are those of a compromised agent user.
func TestRestartRuleInRealPolkitd(t *testing.T) {
	bus := polkittest.StartBus(t, polkittest.BusOptions{Strict: true})
	dir := filepath.Join(polkittest.TempDir(t, "ov-restart-"), "restart.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.service.conf"), []byte("app=a\nenv=e\nnames=*\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rule, err := policyfiles.RestartRules("nobody", dir)
	if err != nil {
		t.Fatal(err)
	}
	bus.StartPolkitdRules(t, map[string][]byte{"org.freedesktop.systemd1.policy": []byte(manageUnits)},
		map[string][]byte{policyfiles.RestartRulesFile: rule})
	c := bus.Conn(t)
	agentPID := sleeper(t, 65534) // nobody: the agent's user
	otherPID := sleeper(t, 1)     // daemon: another user

	for _, tc := range []struct {
		pid        int32
		uid        uint32
		unit, verb string
		want       bool
	}{
		{agentPID, 65534, "web.service", "try-restart", true},
		{agentPID, 65534, "web.service", "reload-or-try-restart", true},
		{agentPID, 65534, "web.service", "stop", false},
		{agentPID, 65534, "web.service", "start", false},
		{agentPID, 65534, "web.service", "restart", false},
		{agentPID, 65534, "sshd.service", "try-restart", false},             // no policy
		{agentPID, 65534, "web.socket", "try-restart", false},               // not a service
		{agentPID, 65534, "../restart.d/web.service", "try-restart", false}, // a path
		{otherPID, 1, "web.service", "try-restart", false},                  // another user
	} {
		if got := checkUnit(t, c, tc.pid, tc.uid, tc.unit, tc.verb); got != tc.want {
			t.Errorf("uid %d %s %q: authorized %v, want %v", tc.uid, tc.verb, tc.unit, got, tc.want)
		}
	}
	// The policy removed: the same call is no longer allowed.
	if err := os.Remove(filepath.Join(dir, "web.service.conf")); err != nil {
		t.Fatal(err)
	}
	if checkUnit(t, c, agentPID, 65534, "web.service", "try-restart") {
		t.Error("allowed after its policy was removed")
	}
}

func TestRestartRulesRefusesOddInput(t *testing.T) {
	for _, tc := range [][2]string{{"bad\"user", "/etc/ov/restart.d"}, {"deploy", "relative"}, {"deploy", "/etc/ov/../x"}, {"deploy", "/etc/o\"v"}} {
		if _, err := policyfiles.RestartRules(tc[0], tc[1]); err == nil {
			t.Errorf("%q %q accepted", tc[0], tc[1])
		}
	}
}
