// SPDX-License-Identifier: Apache-2.0

// Package peercred reads the credentials of the process at the other end of
// a unix socket: SO_PEERCRED on Linux, LOCAL_PEERCRED and LOCAL_PEERPID on
// macOS. The kernel records them at connect() for the connecting side and at
// listen() for the listening side, so a server learns who connected, and a
// client learns who created the listening socket (with socket activation,
// systemd: uid 0).
//
// Decisions must rest on the uid: it cannot be forged. The pid is racy (the
// process may have exited and its pid been reused) and is for logs and polkit
// subjects only; [ProcessOf] pins the peer with a pidfd (SO_PEERPIDFD) for
// audit labels that a reused pid cannot falsify. A failed lookup never yields a usable zero [Peer]: callers
// get an error, and [FromContext] reports ok=false, so uid 0 is never
// assumed.
package peercred

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Peer is the identity of the other end of a unix socket.
type Peer struct {
	UID, GID uint32
	PID      int32 // 0 when the system does not say
}

// ErrNotUnix means the connection is not a unix domain socket.
var ErrNotUnix = errors.New("not a unix socket")

// Of returns the credentials of the other end of c, which must be a
// *net.UnixConn (or wrap one: anything with SyscallConn). Errors wrap
// [ErrNotUnix] or the system error.
func Of(c net.Conn) (Peer, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Peer{}, fmt.Errorf("read peer credentials: %T: %w", c, ErrNotUnix)
	}
	if a := c.LocalAddr(); a == nil || (a.Network() != "unix" && a.Network() != "unixpacket") {
		return Peer{}, fmt.Errorf("read peer credentials: %T: %w", c, ErrNotUnix)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", err)
	}
	var p Peer
	var gerr error
	if err := rc.Control(func(fd uintptr) { p, gerr = ofFD(int(fd)) }); err != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", err)
	}
	if gerr != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", gerr)
	}
	return p, nil
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the peer stored by [NewContext]; ok is false when
// there is none (for example because [Of] failed), and then p must not be
// trusted.
func FromContext(ctx context.Context) (p Peer, ok bool) {
	p, ok = ctx.Value(ctxKey{}).(Peer)
	return p, ok
}
