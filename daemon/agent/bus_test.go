// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/opaquevault/opaquevault/daemon/agent"
	"github.com/opaquevault/opaquevault/daemon/polkit/polkittest"
	"github.com/opaquevault/opaquevault/internal/localapi"
	policyfiles "github.com/opaquevault/opaquevault/polkit"
)

func busErrName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dp *dbus.Error
	if errors.As(err, &dp) {
		return dp.Name
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// The object on a private system bus without polkitd: exported,
// introspectable, Status answers; Lock and Reload are denied to another uid
// (polkit cannot be asked, so no) and allowed to root without polkit.
func TestBusWithoutPolkit(t *testing.T) {
	needRoot(t)
	bus := polkittest.StartBus(t, polkittest.BusOptions{})
	p := startAgent(t, agentOpts{uid: 0, key: key1, env: []string{"OV_BUS=system", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.Address}})
	p.waitNotify(t, "READY=1")
	p.waitLog(t, "D-Bus object exported")

	conn := bus.Conn(t)
	obj := conn.Object(agent.BusName, agent.BusPath)
	node, err := introspect.Call(obj)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	var iface *introspect.Interface
	for i := range node.Interfaces {
		if node.Interfaces[i].Name == agent.BusInterface {
			iface = &node.Interfaces[i]
		}
	}
	if iface == nil {
		t.Fatalf("introspection lacks %s: %+v", agent.BusInterface, node)
	}
	var methods []string
	for _, m := range iface.Methods {
		methods = append(methods, m.Name)
	}
	slices.Sort(methods)
	if strings.Join(methods, ",") != "Lock,Reload,Status" || len(iface.Signals) != 1 || iface.Signals[0].Name != "StateChanged" {
		t.Errorf("introspected %+v", iface)
	}
	for _, m := range iface.Methods {
		if m.Name == "Status" && (len(m.Args) != 1 || m.Args[0].Type != "s" || m.Args[0].Direction != "out") {
			t.Errorf("Status introspected as %+v, want one string out", m)
		}
	}
	if node.Name != string(agent.BusPath) || !slices.ContainsFunc(node.Interfaces, func(i introspect.Interface) bool { return i.Name == "org.freedesktop.DBus.Introspectable" }) {
		t.Errorf("introspected node %q with %d interfaces", node.Name, len(node.Interfaces))
	}

	var s string
	if err := obj.Call(agent.BusInterface+".Status", 0).Store(&s); err != nil || s != "unlocked: myapp/production" {
		t.Errorf("Status = %q, %v", s, err)
	}
	for _, m := range []string{"Lock", "Reload"} {
		if out := p.asBus(t, nobody, bus.Address, m); !strings.HasPrefix(out, "error name=org.freedesktop.DBus.Error.AccessDenied") {
			t.Errorf("uid 65534 %s without polkit: %q, want AccessDenied", m, out)
		}
	}
	p.waitLog(t, `D-Bus call denied: polkit failed.*peer_uid=65534 request=com.opaquevault.agent.lock`)
	if st, err := p.client().Status(context.Background()); err != nil || st.State != "unlocked" {
		t.Errorf("after a denied Lock: %+v, %v", st, err)
	}
	// Root needs no polkit.
	if err := obj.Call(agent.BusInterface+".Lock", 0).Err; err != nil {
		t.Fatalf("root Lock without polkit: %v", err)
	}
	p.waitNotify(t, "STATUS=locked")
}

// The agent's own user may Lock its agent (with or without polkit; a real
// install has no polkit rule for it), and another unprivileged uid may not.
func TestBusOwnerMayLock(t *testing.T) {
	needRoot(t)
	bus := systemBusWithPolkit(t, "nobody")
	p := startAgent(t, agentOpts{uid: nobody, key: key1, env: []string{"OV_BUS=system", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.Address}})
	p.waitNotify(t, "READY=1")
	p.waitLog(t, "D-Bus object exported")
	const other = 1 // daemon: a uid with a passwd entry, which the bus requires
	if out := p.asBus(t, other, bus.Address, "Lock"); !strings.HasPrefix(out, "error name=org.freedesktop.DBus.Error.AccessDenied") {
		t.Errorf("uid %d Lock: %q, want AccessDenied", other, out)
	}
	if st, err := p.client().Status(context.Background()); err != nil || st.State != "unlocked" {
		t.Fatalf("after another uid's Lock: %+v, %v", st, err)
	}
	if out := p.asBus(t, nobody, bus.Address, "Lock"); !strings.HasPrefix(out, "ok") {
		t.Errorf("the agent's own uid Lock: %q", out)
	}
	p.waitNotify(t, "STATUS=locked")
	if st, err := p.client().Status(context.Background()); err != nil || st.State != localapi.StateLocked {
		t.Errorf("after the owner's Lock: %+v, %v", st, err)
	}
}

// With a real polkitd and the project's policy on a bus with the system's
// default-deny policy plus the rendered com.opaquevault.Agent1.conf: uid
// 65534 may ask for the status but polkit refuses it Lock; root may Reload
// and Lock, and StateChanged is emitted.
func TestBusWithPolkit(t *testing.T) {
	needRoot(t)
	bus := systemBusWithPolkit(t, "root")
	p := startAgent(t, agentOpts{uid: 0, key: key1, env: []string{"OV_BUS=system", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.Address}})
	p.waitNotify(t, "READY=1")
	p.waitLog(t, "D-Bus object exported")

	conn := bus.Conn(t)
	if err := conn.AddMatchSignal(dbus.WithMatchInterface(agent.BusInterface), dbus.WithMatchMember("StateChanged")); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 8)
	conn.Signal(sigs)

	dbusAs := func(uid uint32, method string) string {
		t.Helper()
		return p.asBus(t, uid, bus.Address, method)
	}
	if out := dbusAs(nobody, "Status"); !strings.HasPrefix(out, "ok unlocked: myapp/production") {
		t.Errorf("uid 65534 Status: %q", out)
	}
	if out := dbusAs(nobody, "Lock"); !strings.HasPrefix(out, "error name=org.freedesktop.DBus.Error.AccessDenied") {
		t.Errorf("uid 65534 Lock: %q", out)
	}
	p.waitLog(t, `D-Bus call denied by polkit.*peer_uid=65534 request=com.opaquevault.agent.lock`)

	obj := conn.Object(agent.BusName, agent.BusPath)
	if err := obj.Call(agent.BusInterface+".Reload", 0).Err; err != nil {
		t.Fatalf("root Reload: %v", err)
	}
	p.waitNotify(t, "RELOADING=1")
	p.waitNotify(t, "READY=1")
	if err := obj.Call(agent.BusInterface+".Lock", 0).Err; err != nil {
		t.Fatalf("root Lock: %v", err)
	}
	p.waitNotify(t, "STATUS=locked")
	deadline := time.After(5 * time.Second)
	for got := ""; got != "locked"; {
		select {
		case s := <-sigs:
			if len(s.Body) == 1 {
				got, _ = s.Body[0].(string)
			}
		case <-deadline:
			t.Fatal("no StateChanged(\"locked\") signal")
		}
	}
	if st, err := p.client().Status(context.Background()); err != nil || st.State != localapi.StateLocked {
		t.Errorf("after Lock: %+v, %v", st, err)
	}
}

// The rendered bus policy: only the agent's user may own the name.
func TestBusPolicyOwnership(t *testing.T) {
	needRoot(t)
	dir := polkittest.TempDir(t, "ov-buspolicy-")
	bp, err := policyfiles.BusPolicy("nobody")
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, policyfiles.BusPolicyFile)
	if err := os.WriteFile(pf, bp, 0o644); err != nil {
		t.Fatal(err)
	}
	bus := polkittest.StartBus(t, polkittest.BusOptions{Strict: true, Include: []string{pf}})

	root := bus.Conn(t)
	if _, err := root.RequestName(agent.BusName, dbus.NameFlagDoNotQueue); busErrName(err) != "org.freedesktop.DBus.Error.AccessDenied" {
		t.Errorf("root owning %s: %v, want AccessDenied", agent.BusName, err)
	}

	p := startAgent(t, agentOpts{uid: nobody, key: key1, env: []string{"OV_BUS=system", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.Address}})
	p.waitNotify(t, "READY=1")
	p.waitLog(t, "D-Bus object exported")
	var s string
	if err := root.Object(agent.BusName, agent.BusPath).Call(agent.BusInterface+".Status", 0).Store(&s); err != nil || s != "unlocked: myapp/production" {
		t.Errorf("Status from root: %q, %v", s, err)
	}
	// Methods the policy does not open stay closed.
	err = root.Object(agent.BusName, agent.BusPath).Call("org.freedesktop.DBus.Properties.GetAll", 0, agent.BusInterface).Err
	if busErrName(err) != "org.freedesktop.DBus.Error.AccessDenied" {
		t.Errorf("Properties.GetAll: %v, want AccessDenied from the bus", err)
	}
}

// systemBusWithPolkit starts a private system bus with the system's default-deny policy plus the
// rendered com.opaquevault.Agent1.conf for the agent's user, and a real polkitd with the project's
// policy on it.
func systemBusWithPolkit(t *testing.T, user string) *polkittest.Bus {
	t.Helper()
	bp, err := policyfiles.BusPolicy(user)
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(polkittest.TempDir(t, "ov-buspolicy-"), policyfiles.BusPolicyFile)
	if err := os.WriteFile(pf, bp, 0o644); err != nil {
		t.Fatal(err)
	}
	bus := polkittest.StartBus(t, polkittest.BusOptions{Strict: true, Include: []string{pf}})
	bus.StartPolkitd(t, map[string][]byte{policyfiles.PolicyFile: policyfiles.Policy()})
	return bus
}
