// SPDX-License-Identifier: Apache-2.0

//go:build linux

package polkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	busName   = "org.freedesktop.PolicyKit1"
	objPath   = "/org/freedesktop/PolicyKit1/Authority"
	authority = "org.freedesktop.PolicyKit1.Authority"

	// DefaultTimeout bounds a check without user interaction.
	DefaultTimeout = 10 * time.Second

	flagAllowUserInteraction = 1
)

// Subject is who wants to perform an action.
type Subject struct {
	kind    string
	details map[string]dbus.Variant
	desc    string
}

// String describes the subject for logs, e.g. "unix-process pid=42 uid=1000".
func (s Subject) String() string { return s.desc }

// UnixProcess returns a "unix-process" subject for pid, running as uid, with
// its start time read from /proc/PID/stat. It fails when the process is gone
// or cannot be seen (for example under ProtectProc=invisible for another
// user's process): the caller must then deny.
func UnixProcess(pid int32, uid uint32) (Subject, error) {
	if pid <= 0 {
		return Subject{}, fmt.Errorf("build polkit subject: invalid pid %d", pid)
	}
	st, err := StartTime(pid)
	if err != nil {
		return Subject{}, fmt.Errorf("build polkit subject: %w", err)
	}
	return Subject{
		kind: "unix-process",
		details: map[string]dbus.Variant{
			"pid":        dbus.MakeVariant(uint32(pid)),
			"start-time": dbus.MakeVariant(st),
			"uid":        dbus.MakeVariant(int32(uid)),
		},
		desc: fmt.Sprintf("unix-process pid=%d start-time=%d uid=%d", pid, st, uid),
	}, nil
}

// SystemBusName returns a "system-bus-name" subject for a unique bus name
// such as ":1.42".
func SystemBusName(name string) Subject {
	return Subject{
		kind:    "system-bus-name",
		details: map[string]dbus.Variant{"name": dbus.MakeVariant(name)},
		desc:    "system-bus-name " + name,
	}
}

// StartTime returns field 22 of /proc/PID/stat: the process start time in
// clock ticks since boot, as polkit compares it.
func StartTime(pid int32) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read start time of pid %d: %w", pid, err)
	}
	return parseStartTime(b)
}

// parseStartTime reads starttime from the contents of /proc/PID/stat. The
// command name (field 2) is in parentheses and may contain spaces and
// parentheses itself, so fields are counted after the last ')'.
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("parse /proc/PID/stat: no command name")
	}
	// After ')' come fields 3 (state) onwards; starttime is field 22.
	f := bytes.Fields(b[i+1:])
	const idx = 22 - 3
	if len(f) <= idx {
		return 0, fmt.Errorf("parse /proc/PID/stat: %d fields after the command name, want more than %d", len(f), idx)
	}
	v, err := strconv.ParseUint(string(f[idx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/PID/stat: start time: %v", err)
	}
	return v, nil
}

// Result is polkit's answer.
type Result struct {
	Authorized bool
	// Challenge: not authorized now, but would be after authentication.
	Challenge bool
	Details   map[string]string
}

// Authority checks authorizations over a bus connection (the system bus).
type Authority struct {
	conn *dbus.Conn
	// Timeout bounds each check (default DefaultTimeout); with user
	// interaction allowed, the caller should give more.
	Timeout time.Duration
}

// New returns an Authority that calls polkitd over conn, which must be a
// connection to the system bus (or a bus where polkitd runs).
func New(conn *dbus.Conn) *Authority { return &Authority{conn: conn} }

// Check asks whether subject may perform action. With interactive set,
// polkit may ask the user to authenticate (when the caller of the D-Bus
// method allowed interactive authorization). Any failure is an error, and
// the result is then not authorized.
func (a *Authority) Check(ctx context.Context, subject Subject, action string, interactive bool) (Result, error) {
	if a == nil || a.conn == nil {
		return Result{}, errors.New("check authorization: no bus connection")
	}
	if subject.kind == "" {
		return Result{}, errors.New("check authorization: empty subject")
	}
	to := a.Timeout
	if to <= 0 {
		to = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	var flags uint32
	if interactive {
		flags |= flagAllowUserInteraction
	}
	cid := cancellationID()
	subj := struct {
		Kind    string
		Details map[string]dbus.Variant
	}{subject.kind, subject.details}
	var res struct {
		IsAuthorized bool
		IsChallenge  bool
		Details      map[string]string
	}
	obj := a.conn.Object(busName, objPath)
	call := obj.CallWithContext(ctx, authority+".CheckAuthorization", 0, subj, action, map[string]string{}, flags, cid)
	if call.Err != nil {
		if ctx.Err() != nil {
			// Best effort: let polkitd drop a pending authentication dialog.
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			obj.CallWithContext(cctx, authority+".CancelCheckAuthorization", 0, cid)
			ccancel()
		}
		return Result{}, fmt.Errorf("check authorization for %s: %w", action, call.Err)
	}
	if err := call.Store(&res); err != nil {
		return Result{}, fmt.Errorf("check authorization for %s: %w", action, err)
	}
	return Result{Authorized: res.IsAuthorized, Challenge: res.IsChallenge, Details: res.Details}, nil
}

// Allowed reports whether subject may perform action, denying on any error;
// the error, if any, is returned for the log.
func (a *Authority) Allowed(ctx context.Context, subject Subject, action string, interactive bool) (bool, error) {
	r, err := a.Check(ctx, subject, action, interactive)
	if err != nil {
		return false, err
	}
	return r.Authorized, nil
}

func cancellationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ov-" + hex.EncodeToString(b[:])
}
