// SPDX-License-Identifier: Apache-2.0

package sd

import (
	"fmt"
	"time"
)

// UnitInfo is what the service manager reports about a service unit over D-Bus: the configuration
// in effect (which may differ from the files on disk until a daemon-reload) and its state.
type UnitInfo struct {
	Name             string
	LoadState        string // "loaded", "not-found", "masked", …
	ActiveState      string // "active", "inactive", "failed", …
	SubState         string
	FragmentPath     string
	DropInPaths      []string
	NeedDaemonReload bool // the files on disk changed since the manager read them
	// ActiveEnter is when the unit last entered the active state (zero: never).
	ActiveEnter time.Time

	// Service settings (empty for other unit types).
	User             string
	DynamicUser      bool
	ExecStart        []ExecCommand
	EnvironmentFiles []EnvironmentFile
	Environment      []string // NAME=VALUE, specifiers expanded
	CacheDirectory   []string
	StateDirectory   []string
}

// ExecCommand is one ExecStart= command as the manager holds it.
type ExecCommand struct {
	Path         string
	Argv         []string // argv[0] first
	IgnoreErrors bool     // the "-" prefix
}

// EnvironmentFile is one EnvironmentFile= path; Optional is the "-" form.
type EnvironmentFile struct {
	Path     string
	Optional bool
}

// decodeUnit fills a UnitInfo from the property maps of org.freedesktop.systemd1.Unit and
// org.freedesktop.systemd1.Service, as godbus decodes them.
func decodeUnit(name string, unit, svc map[string]any) (*UnitInfo, error) {
	u := &UnitInfo{Name: name}
	u.LoadState, _ = unit["LoadState"].(string)
	u.ActiveState, _ = unit["ActiveState"].(string)
	u.SubState, _ = unit["SubState"].(string)
	u.FragmentPath, _ = unit["FragmentPath"].(string)
	u.DropInPaths, _ = unit["DropInPaths"].([]string)
	u.NeedDaemonReload, _ = unit["NeedDaemonReload"].(bool)
	if us, ok := unit["ActiveEnterTimestamp"].(uint64); ok && us > 0 {
		u.ActiveEnter = time.UnixMicro(int64(us))
	}
	if svc == nil {
		return u, nil
	}
	u.User, _ = svc["User"].(string)
	u.DynamicUser, _ = svc["DynamicUser"].(bool)
	u.Environment, _ = svc["Environment"].([]string)
	u.CacheDirectory, _ = svc["CacheDirectory"].([]string)
	u.StateDirectory, _ = svc["StateDirectory"].([]string)
	if v, ok := svc["ExecStart"]; ok {
		rows, err := structRows(v)
		if err != nil {
			return nil, fmt.Errorf("read ExecStart of %s: %w", name, err)
		}
		for _, r := range rows {
			// (sasbttttuii): path, argv, ignore_errors, timestamps, pid, code, status
			if len(r) < 3 {
				return nil, fmt.Errorf("read ExecStart of %s: %d fields, want 10", name, len(r))
			}
			c := ExecCommand{}
			c.Path, _ = r[0].(string)
			c.Argv, _ = r[1].([]string)
			c.IgnoreErrors, _ = r[2].(bool)
			u.ExecStart = append(u.ExecStart, c)
		}
	}
	if v, ok := svc["EnvironmentFiles"]; ok {
		rows, err := structRows(v)
		if err != nil {
			return nil, fmt.Errorf("read EnvironmentFiles of %s: %w", name, err)
		}
		for _, r := range rows {
			if len(r) < 2 {
				return nil, fmt.Errorf("read EnvironmentFiles of %s: %d fields, want 2", name, len(r))
			}
			f := EnvironmentFile{}
			f.Path, _ = r[0].(string)
			f.Optional, _ = r[1].(bool)
			u.EnvironmentFiles = append(u.EnvironmentFiles, f)
		}
	}
	return u, nil
}

// structRows turns an array of D-Bus structs, as godbus decodes it, into rows of fields.
func structRows(v any) ([][]any, error) {
	switch x := v.(type) {
	case [][]any:
		return x, nil
	case []any:
		out := make([][]any, 0, len(x))
		for _, e := range x {
			r, ok := e.([]any)
			if !ok {
				return nil, fmt.Errorf("unexpected element %T", e)
			}
			out = append(out, r)
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected type %T", v)
}
