// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/opaquevault/opaquevault/daemon/polkit/polkittest"
	"github.com/opaquevault/opaquevault/internal/sd"
)

// fakeSystemd stands in for org.freedesktop.systemd1 on a private dbus-daemon: it records the
// job methods called, answers with a job path, sends JobRemoved with the configured result, and
// serves ActiveState. Units it is told to refuse get AccessDenied, as polkit's denial does.
type fakeSystemd struct {
	conn   *dbus.Conn
	mu     sync.Mutex
	calls  []string
	n      uint32
	result map[string]string // unit → job result (default "done")
	refuse map[string]bool
}

func (f *fakeSystemd) job(method, name, mode string) (dbus.ObjectPath, *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method+" "+name+" "+mode)
	if f.refuse[name] {
		return "", dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Interactive authentication required."})
	}
	f.n++
	id := f.n
	p := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	res := f.result[name]
	if res == "" {
		res = "done"
	}
	go func() {
		_ = f.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved", id, p, name, res)
	}()
	return p, nil
}

func (f *fakeSystemd) ReloadOrTryRestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return f.job("ReloadOrTryRestartUnit", name, mode)
}

func (f *fakeSystemd) TryRestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return f.job("TryRestartUnit", name, mode)
}

type fakeUnit struct{ state string }

func (u fakeUnit) Get(iface, prop string) (dbus.Variant, *dbus.Error) {
	if iface != "org.freedesktop.systemd1.Unit" || prop != "ActiveState" {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{prop})
	}
	return dbus.MakeVariant(u.state), nil
}

func startFakeSystemd(t *testing.T) (*fakeSystemd, string) {
	t.Helper()
	bus := polkittest.StartBus(t, polkittest.BusOptions{})
	conn := bus.Conn(t)
	f := &fakeSystemd{conn: conn, result: map[string]string{"broken.service": "failed"}, refuse: map[string]bool{"other.service": true}}
	if err := conn.ExportMethodTable(map[string]any{
		"ReloadOrTryRestartUnit": f.ReloadOrTryRestartUnit,
		"TryRestartUnit":         f.TryRestartUnit,
	}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(fakeUnit{"active"}, dbus.ObjectPath("/org/freedesktop/systemd1/unit/"+sddbus.PathBusEscape("web.service")), "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.systemd1: %v %v", r, err)
	}
	return f, bus.Address
}

func TestManagerRestartsOverDBus(t *testing.T) {
	f, addr := startFakeSystemd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := sd.ManagerAt(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	if err := m.ReloadOrTryRestart(ctx, "web.service"); err != nil {
		t.Fatalf("reload-or-try-restart: %v", err)
	}
	if err := m.TryRestart(ctx, "web.service"); err != nil {
		t.Fatalf("try-restart: %v", err)
	}
	if st, err := m.ActiveState(ctx, "web.service"); err != nil || st != "active" {
		t.Fatalf("active state: %q, %v", st, err)
	}
	// A job that fails, and a call that polkit refuses, are errors naming the unit.
	if err := m.ReloadOrTryRestart(ctx, "broken.service"); err == nil || !strings.Contains(err.Error(), "broken.service") || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("failed job: %v", err)
	}
	if err := m.TryRestart(ctx, "other.service"); err == nil || !strings.Contains(err.Error(), "other.service") {
		t.Fatalf("refused call: %v", err)
	}
	f.mu.Lock()
	got := strings.Join(f.calls, "\n")
	f.mu.Unlock()
	want := "ReloadOrTryRestartUnit web.service replace\nTryRestartUnit web.service replace\nReloadOrTryRestartUnit broken.service replace\nTryRestartUnit other.service replace"
	if got != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
}
