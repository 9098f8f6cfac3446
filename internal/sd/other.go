// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package sd

import (
	"context"
	"net"
	"time"

	"github.com/sirupsen/logrus"
)

// Listeners returns nil, nil: there is no socket activation here.
func Listeners(string) ([]net.Listener, error) { return nil, nil }

// ListenersNamed returns nil, nil: there is no socket activation here.
func ListenersNamed(...string) (map[string][]net.Listener, error) { return nil, nil }

// AllListeners returns nil: there is no socket activation here.
func AllListeners() []net.Listener { return nil }

// Notify does nothing and reports false.
func Notify(...string) (bool, error) { return false, nil }

// Ready does nothing.
func Ready(string) error { return nil }

// Status does nothing.
func Status(string) error { return nil }

// Reloading does nothing.
func Reloading() error { return nil }

// Stopping does nothing.
func Stopping() error { return nil }

// WatchdogInterval returns 0.
func WatchdogInterval() time.Duration { return 0 }

// Watchdog returns at once.
func Watchdog(context.Context) {}

func stderrIsJournal() bool { return false }

type journalHook struct{ fallback logrus.Formatter }

func (*journalHook) Levels() []logrus.Level { return nil }

func (*journalHook) Fire(*logrus.Entry) error { return nil }

// Manager is not available here.
type Manager struct{}

// SystemManager fails with [ErrNoSystemd].
func SystemManager(context.Context) (*Manager, error) { return nil, ErrNoSystemd }

// UserManager fails with [ErrNoSystemd].
func UserManager(context.Context) (*Manager, error) { return nil, ErrNoSystemd }

// Close does nothing.
func (*Manager) Close() {}

// Reload fails with [ErrNoSystemd].
func (*Manager) Reload(context.Context) error { return ErrNoSystemd }

// Enable fails with [ErrNoSystemd].
func (*Manager) Enable(context.Context, ...string) error { return ErrNoSystemd }

// Disable fails with [ErrNoSystemd].
func (*Manager) Disable(context.Context, ...string) error { return ErrNoSystemd }

// Start fails with [ErrNoSystemd].
func (*Manager) Start(context.Context, string) error { return ErrNoSystemd }

// Stop fails with [ErrNoSystemd].
func (*Manager) Stop(context.Context, string) error { return ErrNoSystemd }

// TryRestart fails with [ErrNoSystemd].
func (*Manager) TryRestart(context.Context, string) error { return ErrNoSystemd }

// ActiveState fails with [ErrNoSystemd].
func (*Manager) ActiveState(context.Context, string) (string, error) { return "", ErrNoSystemd }

// ManagerAt fails with [ErrNoSystemd].
func ManagerAt(context.Context, string) (*Manager, error) { return nil, ErrNoSystemd }

// ReloadOrTryRestart fails with [ErrNoSystemd].
func (*Manager) ReloadOrTryRestart(context.Context, string) error { return ErrNoSystemd }
