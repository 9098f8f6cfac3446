// SPDX-License-Identifier: Apache-2.0

package polkit

import "github.com/godbus/dbus/v5"

// WithStartTime returns a copy of a unix-process subject claiming another start time, as a
// process that replaced a dead one under the same pid would look.
func WithStartTime(s Subject, st uint64) Subject {
	d := make(map[string]dbus.Variant, len(s.details))
	for k, v := range s.details {
		d[k] = v
	}
	d["start-time"] = dbus.MakeVariant(st)
	return Subject{kind: s.kind, details: d, desc: s.desc + " (forged start time)"}
}
