// SPDX-License-Identifier: Apache-2.0

//go:build linux

package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/polkit"
)

// The D-Bus names of the agent.
const (
	BusName      = "com.opaquevault.Agent1"
	BusPath      = dbus.ObjectPath("/com/opaquevault/Agent1")
	BusInterface = "com.opaquevault.Agent1"

	// ActionLock and ActionReload are the polkit actions that authorize
	// Lock() and Reload() (polkit/com.opaquevault.policy).
	ActionLock   = "com.opaquevault.agent.lock"
	ActionReload = "com.opaquevault.agent.reload"

	errAccessDenied = "org.freedesktop.DBus.Error.AccessDenied"
	errFailed       = "org.freedesktop.DBus.Error.Failed"

	// interactiveTimeout bounds a polkit check that may show a password
	// prompt.
	interactiveTimeout = 2 * time.Minute
)

// introspection describes the object for org.freedesktop.DBus.Introspectable. It is written out
// rather than built with godbus's introspect package, whose encoding/xml every ov command would
// otherwise initialise at start-up (bus_test.go parses it back).
const introspection = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node name="` + string(BusPath) + `">
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect">
   <arg name="out" type="s" direction="out"/>
  </method>
 </interface>
 <interface name="` + BusInterface + `">
  <method name="Status">
   <arg name="state" type="s" direction="out"/>
  </method>
  <method name="Lock"/>
  <method name="Reload"/>
  <signal name="StateChanged">
   <arg name="state" type="s"/>
  </signal>
 </interface>
</node>`

// introspectable answers org.freedesktop.DBus.Introspectable.Introspect.
type introspectable string

func (i introspectable) Introspect() (string, *dbus.Error) { return string(i), nil }

type busObject struct {
	a      *agentState
	conn   *dbus.Conn
	system bool
	log    *logrus.Entry
}

// startBus connects to D-Bus, exports the object and asks for the name.
// Failing that, it logs and the agent runs without D-Bus.
func (a *agentState) startBus(ctx context.Context) stateSink {
	which := a.cfg.Bus
	if which == BusAuto {
		which = BusSystem
		if a.cfg.Mode == ModeUser {
			which = BusSession
		}
	}
	if which == BusNone {
		return nopSink{}
	}
	log := a.log.WithField("bus", map[Bus]string{BusSystem: "system", BusSession: "session"}[which])
	var conn *dbus.Conn
	var err error
	if which == BusSystem {
		conn, err = dbus.SystemBusPrivate(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.SessionBusPrivate(dbus.WithContext(ctx))
	}
	if err == nil {
		if err = conn.Auth(nil); err == nil {
			err = conn.Hello()
		}
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		log.WithError(err).Warn("D-Bus unavailable; serving the socket only")
		return nopSink{}
	}
	b := &busObject{a: a, conn: conn, system: which == BusSystem, log: log}
	if err := conn.Export(busMethods{b}, BusPath, BusInterface); err != nil {
		conn.Close()
		log.WithError(err).Warn("cannot export the D-Bus object")
		return nopSink{}
	}
	if err := conn.Export(introspectable(introspection), BusPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		conn.Close()
		log.WithError(err).Warn("cannot export the D-Bus object")
		return nopSink{}
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		if err == nil {
			err = fmt.Errorf("name owned by another process (reply %d)", reply)
		}
		log.WithError(err).Warn("cannot own " + BusName + "; serving the socket only")
		conn.Close()
		return nopSink{}
	}
	log.WithField("name", BusName).Info("D-Bus object exported")
	return b
}

func (b *busObject) stateChanged(text string) {
	if err := b.conn.Emit(BusPath, BusInterface+".StateChanged", text); err != nil {
		b.log.WithError(err).Debug("cannot emit StateChanged")
	}
}

func (b *busObject) close() {
	_, _ = b.conn.ReleaseName(BusName)
	b.conn.Close()
}

// caller returns the uid and pid of a bus peer, as the bus daemon knows
// them.
func (b *busObject) caller(ctx context.Context, sender dbus.Sender) (uid uint32, pid uint32, err error) {
	o := b.conn.BusObject()
	if err = o.CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid); err != nil {
		return 0, 0, fmt.Errorf("get uid of %s: %w", sender, err)
	}
	if err = o.CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixProcessID", 0, string(sender)).Store(&pid); err != nil {
		return 0, 0, fmt.Errorf("get pid of %s: %w", sender, err)
	}
	return uid, pid, nil
}

// authorize decides a privileged call. Root and the agent's own uid are
// allowed (they can already stop or signal the agent; and polkitd does not
// answer questions about other users' subjects from an unprivileged agent
// unless it owns the action). On the system bus anyone else is asked about
// through polkit (system-bus-name subject; denied on any error); on the
// session bus anyone else is denied.
func (b *busObject) authorize(sender dbus.Sender, msg dbus.Message, action string) (*logrus.Entry, *dbus.Error) {
	interactive := msg.Flags&dbus.FlagAllowInteractiveAuthorization != 0
	to := polkit.DefaultTimeout
	if interactive {
		to = interactiveTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), to)
	defer cancel()
	log := b.log.WithFields(logrus.Fields{"request": action, "sender": string(sender)})
	uid, pid, err := b.caller(ctx, sender)
	if err != nil {
		log.WithError(err).Warn("D-Bus call denied: unknown caller")
		return log, dbus.NewError(errAccessDenied, []any{"cannot identify the caller"})
	}
	log = log.WithFields(logrus.Fields{"peer_uid": uid, "peer_pid": pid})
	if uid == 0 || uid == b.a.owner {
		return log, nil
	}
	if !b.system {
		log.Warn("D-Bus call denied")
		return log, dbus.NewError(errAccessDenied, []any{fmt.Sprintf("uid %d may not call %s", uid, action)})
	}
	// The subject is the caller's bus name: polkitd asks the bus who it
	// is, which cannot race with pid reuse and needs no access to the
	// caller's /proc entry (which the unit's PrivateUsers= with
	// ProtectProc=invisible hides, even for the agent's own uid).
	subj := polkit.SystemBusName(string(sender))
	auth := polkit.New(b.conn)
	auth.Timeout = to
	ok, err := auth.Allowed(ctx, subj, action, interactive)
	if err != nil {
		log.WithError(err).Warn("D-Bus call denied: polkit failed")
		return log, dbus.NewError(errAccessDenied, []any{"not authorized: " + action + " (polkit unavailable)"})
	}
	if !ok {
		log.Warn("D-Bus call denied by polkit")
		return log, dbus.NewError(errAccessDenied, []any{"not authorized: " + action})
	}
	return log, nil
}

// busMethods are the exported methods of com.opaquevault.Agent1.
type busMethods struct{ b *busObject }

// Status returns the one-line state ("locked", "unlocked: app/env").
func (m busMethods) Status() (string, *dbus.Error) {
	return m.b.a.status().Text(), nil
}

// Lock wipes the key, if polkit allows the caller.
func (m busMethods) Lock(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	log, derr := m.b.authorize(sender, msg, ActionLock)
	if derr != nil {
		return derr
	}
	m.b.a.lock("D-Bus Lock")
	log.Info("locked over D-Bus")
	return nil
}

// Reload re-reads the machine key credential, if polkit allows the caller.
func (m busMethods) Reload(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	log, derr := m.b.authorize(sender, msg, ActionReload)
	if derr != nil {
		return derr
	}
	if err := m.b.a.reload(context.Background(), "D-Bus Reload"); err != nil {
		return dbus.NewError(errFailed, []any{"reload failed: " + err.Error()})
	}
	log.Info("reloaded over D-Bus")
	return nil
}
