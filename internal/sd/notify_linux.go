// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notify sends the given assignments ("READY=1", "STATUS=…") to the service
// manager in one datagram. It reports whether a message was sent: false with
// a nil error when $NOTIFY_SOCKET is unset.
func Notify(assignments ...string) (bool, error) {
	for _, a := range assignments {
		if !strings.Contains(a, "=") {
			return false, fmt.Errorf("notify systemd: %q is not an assignment", a)
		}
	}
	sent, err := daemon.SdNotify(false, strings.Join(assignments, "\n"))
	if err != nil {
		return false, fmt.Errorf("notify systemd: %w", err)
	}
	return sent, nil
}

// statusLine keeps a status on one line: STATUS= ends at a newline.
func statusLine(s string) string {
	return "STATUS=" + strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Ready tells systemd that start-up (or a reload) is complete, with status
// as the unit's status text when it is not empty.
func Ready(status string) error {
	a := []string{daemon.SdNotifyReady}
	if status != "" {
		a = append(a, statusLine(status))
	}
	_, err := Notify(a...)
	return err
}

// Status sets the unit's status text (`systemctl status` shows it).
func Status(status string) error {
	_, err := Notify(statusLine(status))
	return err
}

// Reloading tells systemd that a reload started; send [Ready] when it is
// done. It includes MONOTONIC_USEC, which Type=notify-reload requires.
func Reloading() error {
	a := []string{daemon.SdNotifyReloading}
	if m := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"); m != "" {
		a = append(a, m)
	}
	_, err := Notify(a...)
	return err
}

// Stopping tells systemd that the service is shutting down.
func Stopping() error {
	_, err := Notify(daemon.SdNotifyStopping)
	return err
}

// WatchdogInterval returns how often to send WATCHDOG=1: half of WatchdogSec=
// (from $WATCHDOG_USEC, when $WATCHDOG_PID is this process), or 0 when the
// watchdog is off or the variables are malformed.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// Watchdog sends WATCHDOG=1 every [WatchdogInterval] until ctx is done. It
// returns at once when the watchdog is off.
func Watchdog(ctx context.Context) {
	iv := WatchdogInterval()
	if iv <= 0 {
		return
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		_, _ = Notify(daemon.SdNotifyWatchdog)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
