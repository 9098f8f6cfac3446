// SPDX-License-Identifier: Apache-2.0

//go:build linux

package polkit_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/daemon/polkit"
	"github.com/opaquevault/opaquevault/daemon/polkit/polkittest"
	policyfiles "github.com/opaquevault/opaquevault/polkit"
)

func TestStartTimeOfSelf(t *testing.T) {
	st, err := polkit.StartTime(int32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	// A child started now started later (or in the same tick).
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ct, err := polkit.StartTime(int32(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if ct < st || st == 0 {
		t.Errorf("start times: self %d, later child %d", st, ct)
	}
	if _, err := polkit.StartTime(0x7ffffff0); err == nil {
		t.Error("no error for a pid that does not exist")
	}
	if _, err := polkit.UnixProcess(-1, 0); err == nil {
		t.Error("no error for pid -1")
	}
}

// sleeper starts `sleep` as uid (0 for the caller's uid).
func sleeper(t *testing.T, uid uint32) int32 {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: cannot start a process as uid %d: %v", uid, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return int32(cmd.Process.Pid)
}

// No polkitd on the bus: every check is an error, and not allowed.
func TestDenyWithoutPolkitd(t *testing.T) {
	bus := polkittest.StartBus(t, polkittest.BusOptions{})
	a := polkit.New(bus.Conn(t))
	a.Timeout = 2 * time.Second
	subj, err := polkit.UnixProcess(int32(os.Getpid()), uint32(os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := a.Allowed(context.Background(), subj, "com.opaquevault.agent.lock", false)
	if ok || err == nil {
		t.Fatalf("Allowed = %v, %v; want false and an error", ok, err)
	}
	t.Logf("denied as expected: %v", err)
	if ok, err := (&polkit.Authority{}).Allowed(context.Background(), subj, "x", false); ok || err == nil {
		t.Errorf("nil connection: Allowed = %v, %v", ok, err)
	}
}

// A real polkitd with the project's policy: root is authorized, uid 65534
// is not (allow_any=no), an unknown action is an error, and a subject whose
// start time does not match its pid is refused.
func TestRealPolkitd(t *testing.T) {
	bus := polkittest.StartBus(t, polkittest.BusOptions{Strict: true})
	bus.StartPolkitd(t, map[string][]byte{policyfiles.PolicyFile: policyfiles.Policy()})
	a := polkit.New(bus.Conn(t))
	ctx := context.Background()

	root, err := polkit.UnixProcess(sleeper(t, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"com.opaquevault.agent.lock", "com.opaquevault.agent.reload", "com.opaquevault.agent.install"} {
		r, err := a.Check(ctx, root, action, false)
		if err != nil || !r.Authorized {
			t.Errorf("root %s: %+v, %v; want authorized", action, r, err)
		}
	}

	nobody, err := polkit.UnixProcess(sleeper(t, 65534), 65534)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Check(ctx, nobody, "com.opaquevault.agent.lock", false)
	if err != nil || r.Authorized {
		t.Errorf("uid 65534: %+v, %v; want not authorized, no error", r, err)
	}

	if ok, err := a.Allowed(ctx, root, "com.opaquevault.agent.nope", false); ok || err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unknown action: %v, %v", ok, err)
	}

	// Root's pid with another start time (a recycled pid): not root's process, so no.
	pid := sleeper(t, 0)
	real, err := polkit.UnixProcess(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := polkit.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Allowed(ctx, polkit.WithStartTime(real, st+1), "com.opaquevault.agent.lock", false); ok {
		t.Errorf("root's pid with a forged start time: allowed (%v)", err)
	}

	// The bus-name subject: polkitd asks the bus who the caller is (root).
	c := bus.Conn(t)
	if ok, err := a.Allowed(ctx, polkit.SystemBusName(c.Names()[0]), "com.opaquevault.agent.lock", false); !ok || err != nil {
		t.Errorf("system-bus-name of a root connection: %v, %v", ok, err)
	}
}
