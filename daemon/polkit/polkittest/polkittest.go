// SPDX-License-Identifier: Apache-2.0

//go:build linux

package polkittest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Bus is a private system-like bus.
type Bus struct {
	// Address is for DBUS_SYSTEM_BUS_ADDRESS.
	Address string
	// Dir holds the socket and the configuration (0755, root-owned when the
	// test runs as root, so that other uids can reach the bus).
	Dir string
}

// BusOptions configure [StartBus].
type BusOptions struct {
	// Strict gives the bus the system bus's default policy: nobody may own
	// a name or call a method unless an included file allows it. Otherwise
	// everything is allowed.
	Strict bool
	// Include lists bus policy files to include (such as a rendered
	// com.opaquevault.Agent1.conf).
	Include []string
}

const pkConf = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf"

// StartBus starts dbus-daemon and stops it when t ends.
func StartBus(t testing.TB, o BusOptions) *Bus {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("skipping: dbus-daemon not installed (Debian package dbus-daemon)")
	}
	dir := TempDir(t, "ov-bus-")
	sock := filepath.Join(dir, "bus")
	var policy string
	if o.Strict {
		policy = `
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>`
		if _, err := os.Stat(pkConf); err == nil {
			o.Include = append(o.Include, pkConf)
		}
	} else {
		policy = `
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>`
	}
	var inc strings.Builder
	for _, f := range o.Include {
		fmt.Fprintf(&inc, "  <include>%s</include>\n", f)
	}
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>` + policy + "\n" + inc.String() + `</busconfig>
`
	cf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+cf, "--nofork", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("start dbus-daemon: %v: %s", err, stderr.String())
	}
	b := &Bus{Address: strings.TrimSpace(line), Dir: dir}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Address)
	return b
}

// Conn returns a new connection to the bus, closed when t ends.
func (b *Bus) Conn(t testing.TB) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(b.Address)
	if err != nil {
		t.Fatalf("connect to test bus: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// StartPolkitd runs polkitd on the bus with exactly the given action
// files (contents of *.policy), and stops it when t ends. It needs root,
// unshare(1) and polkitd (Debian package polkitd); it skips otherwise. The
// bus should have been started with Strict (which lets polkitd own its
// name) or without (everything allowed).
func (b *Bus) StartPolkitd(t testing.TB, policies map[string][]byte) {
	t.Helper()
	b.startPolkitd(t, policies, "")
}

func (b *Bus) startPolkitd(t testing.TB, policies map[string][]byte, mounts string) {
	t.Helper()
	const polkitd = "/usr/lib/polkit-1/polkitd"
	if os.Geteuid() != 0 {
		t.Skip("skipping: polkitd needs root to start")
	}
	if _, err := os.Stat(polkitd); err != nil {
		t.Skip("skipping: polkitd not installed (Debian package polkitd)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skipping: unshare not installed (util-linux)")
	}
	actions := filepath.Join(b.Dir, "actions")
	if err := os.Mkdir(actions, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range policies {
		if err := os.WriteFile(filepath.Join(actions, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := mounts + "mount --bind " + actions + " /usr/share/polkit-1/actions && exec " + polkitd + " --no-debug"
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+b.Address)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: cannot start polkitd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := b.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var has bool
		err := c.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.PolicyKit1").Store(&has)
		if err == nil && has {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("polkitd did not appear on the bus: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TempDir returns a new 0755 directory that other uids can traverse, in
// /run (or the system temp directory when not root), removed when t ends.
// Unlike t.TempDir it is not under a 0700 parent, and unlike /tmp its
// ancestors are not world-writable.
func TempDir(t testing.TB, prefix string) string {
	t.Helper()
	base := "/run"
	if os.Geteuid() != 0 {
		base = os.TempDir()
	}
	d, err := os.MkdirTemp(base, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
