// SPDX-License-Identifier: Apache-2.0

package sd

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/godbus/dbus/v5"
)

// wire sends props through godbus's real encoder and decoder (a D-Bus message, as the manager's
// answer to Properties.GetAll arrives), so decodeUnit sees exactly the types godbus produces.
func wire(t *testing.T, props map[string]dbus.Variant) map[string]any {
	t.Helper()
	msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
		dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(props)),
	}, Body: []any{props}}
	var buf bytes.Buffer
	if err := msg.EncodeTo(&buf, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	got, err := dbus.DecodeMessage(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]dbus.Variant
	if err := dbus.Store(got.Body, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range m {
		out[k] = v.Value()
	}
	return out
}

// The D-Bus types of systemd's properties (org.freedesktop.systemd1(5)).
type execStart struct {
	Path                                        string
	Argv                                        []string
	IgnoreErrors                                bool
	StartRealtime, StartMono, ExitRealtime, Ex2 uint64
	PID                                         uint32
	Code, Status                                int32
}

type envFile struct {
	Path     string
	Optional bool
}

func TestDecodeUnit(t *testing.T) {
	unit := wire(t, map[string]dbus.Variant{
		"LoadState":            dbus.MakeVariant("loaded"),
		"ActiveState":          dbus.MakeVariant("active"),
		"SubState":             dbus.MakeVariant("running"),
		"FragmentPath":         dbus.MakeVariant("/etc/systemd/system/myapp.service"),
		"DropInPaths":          dbus.MakeVariant([]string{"/etc/systemd/system/myapp.service.d/50-opaquevault.conf"}),
		"NeedDaemonReload":     dbus.MakeVariant(true),
		"ActiveEnterTimestamp": dbus.MakeVariant(uint64(1_700_000_000_000_000)),
	})
	svc := wire(t, map[string]dbus.Variant{
		"User":        dbus.MakeVariant("deploy"),
		"DynamicUser": dbus.MakeVariant(false),
		"Environment": dbus.MakeVariant([]string{"PORT=8080"}),
		"ExecStart": dbus.MakeVariant([]execStart{{Path: "/usr/bin/ov", Argv: []string{"/usr/bin/ov", "run", "--app", "myapp", "--", "/opt/myapp/bin/server"}, IgnoreErrors: true},
			{Path: "/bin/true", Argv: []string{"/bin/true"}}}),
		"EnvironmentFiles": dbus.MakeVariant([]envFile{{"/opt/myapp/.env", true}}),
		"CacheDirectory":   dbus.MakeVariant([]string{"myapp"}),
	})
	u, err := decodeUnit("myapp.service", unit, svc)
	if err != nil {
		t.Fatal(err)
	}
	if u.LoadState != "loaded" || u.ActiveState != "active" || !u.NeedDaemonReload || u.User != "deploy" ||
		u.ActiveEnter.UnixMicro() != 1_700_000_000_000_000 || len(u.DropInPaths) != 1 || u.CacheDirectory[0] != "myapp" {
		t.Errorf("decoded %+v", u)
	}
	want := []ExecCommand{{Path: "/usr/bin/ov", Argv: []string{"/usr/bin/ov", "run", "--app", "myapp", "--", "/opt/myapp/bin/server"}, IgnoreErrors: true}, {Path: "/bin/true", Argv: []string{"/bin/true"}}}
	if !reflect.DeepEqual(u.ExecStart, want) {
		t.Errorf("ExecStart %+v", u.ExecStart)
	}
	if !reflect.DeepEqual(u.EnvironmentFiles, []EnvironmentFile{{"/opt/myapp/.env", true}}) || !reflect.DeepEqual(u.Environment, []string{"PORT=8080"}) {
		t.Errorf("env %+v %+v", u.EnvironmentFiles, u.Environment)
	}
	// A malformed answer is an error, not a silent empty list.
	bad := wire(t, map[string]dbus.Variant{"ExecStart": dbus.MakeVariant([]string{"x"})})
	if _, err := decodeUnit("x.service", unit, bad); err == nil {
		t.Error("malformed ExecStart accepted")
	}
}
