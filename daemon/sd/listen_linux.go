// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// Listeners returns the listening sockets that systemd passed to this process
// (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) under FileDescriptorName=name. It
// returns nil, nil when the process was not socket-activated. As a
// convenience for hand-run activation (`systemd-socket-activate` without
// --fdname), a single unnamed descriptor is taken as name.
//
// It consumes the LISTEN_* variables and may be called once. Descriptors
// with another name are closed. A passed descriptor that is not a listening
// socket is an error.
func Listeners(name string) ([]net.Listener, error) {
	m, err := ListenersNamed(name)
	return m[name], err
}

// ListenersNamed is [Listeners] for several names at once (a service that
// several socket units activate, each with its FileDescriptorName=): the
// listeners by name. A single unnamed descriptor is taken as the first name;
// descriptors with a name not asked for are closed.
func ListenersNamed(names ...string) (map[string][]net.Listener, error) {
	files := activation.Files(true)
	if len(files) == 0 || len(names) == 0 {
		for _, f := range files {
			f.Close()
		}
		return nil, nil
	}
	out := map[string][]net.Listener{}
	var errs []string
	unnamed := len(files) == 1 && strings.HasPrefix(files[0].Name(), "LISTEN_FD_")
	for _, f := range files {
		name := f.Name()
		if unnamed {
			name = names[0]
		}
		if !slices.Contains(names, name) {
			f.Close()
			continue
		}
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", f.Name(), err))
			continue
		}
		out[name] = append(out[name], l)
	}
	if len(errs) > 0 {
		for _, ls := range out {
			for _, l := range ls {
				l.Close()
			}
		}
		return nil, fmt.Errorf("use socket passed by systemd: not a listening socket: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// AllListeners returns every listening socket systemd passed, whatever its FileDescriptorName=
// (ov-server serves on all of them). It returns nil when the process was not socket-activated,
// skips descriptors that are not listening sockets, and consumes the LISTEN_* variables.
func AllListeners() []net.Listener {
	var ls []net.Listener
	for _, f := range activation.Files(true) {
		l, err := net.FileListener(f)
		f.Close()
		if err == nil {
			ls = append(ls, l)
		}
	}
	return ls
}
