// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/peercred"
)

// The admission of a connection, decided from SO_PEERCRED right after
// accept and before a byte of it is read: another uid than the agent's own
// and root is answered "denied" and closed; a uid over its share of the
// connection caps is answered "rate_limited" and closed. Only admitted
// connections get a goroutine that reads a request (see handle).

const (
	// maxRefusing bounds the goroutines that write a refusal and wait for
	// the peer to read it; past it, refusals are written and closed at once.
	maxRefusing = 32
	// refuseGrace and refuseDrain bound that wait: the peer's request is
	// discarded through a small buffer so that it reads the refusal rather
	// than EPIPE, and never kept.
	refuseGrace = 250 * time.Millisecond
	refuseDrain = 64 << 10
	// maxOtherFrame bounds the requests of admitted peers that are not the
	// agent's uid (root: STATUS and LOCK are a few bytes).
	maxOtherFrame = 4 << 10
)

// connCount counts the connections being served: in total, per uid, and
// those of other uids than the agent's.
type connCount struct {
	mu     sync.Mutex
	total  int
	others int
	perUID map[uint32]int
}

// take reserves a slot for uid, or says why there is none. The agent's
// own uid (owner) has MaxConnsPerUID slots; other uids share the other
// MaxConns-MaxConnsPerUID, so they can never starve the owner and the
// total never exceeds MaxConns.
func (n *connCount) take(l Limits, uid uint32, owner bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.perUID[uid] >= l.MaxConnsPerUID {
		return fmt.Errorf("too many connections from uid %d: at most %d at once", uid, l.MaxConnsPerUID)
	}
	if others := l.MaxConns - l.MaxConnsPerUID; !owner && n.others >= others {
		return fmt.Errorf("too many connections: at most %d at once from uids other than the agent's", others)
	}
	if n.total >= l.MaxConns {
		return fmt.Errorf("too many connections: at most %d at once", l.MaxConns)
	}
	n.total++
	n.perUID[uid]++
	if !owner {
		n.others++
	}
	return nil
}

func (n *connCount) release(uid uint32, owner bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.total--
	if !owner {
		n.others--
	}
	if n.perUID[uid]--; n.perUID[uid] <= 0 {
		delete(n.perUID, uid)
	}
}

// admit decides about a connection just accepted. It returns the peer and
// the log entry for it when the connection is to be served (the caller
// must then call a.count.release when done), or false after it
// has refused and closed c.
func (a *agentState) admit(c net.Conn) (peercred.Peer, *logrus.Entry, bool) {
	peer, err := peercred.Of(c)
	if err != nil {
		// Cannot happen on a unix socket; not attributable, so not logged
		// per connection beyond debug.
		a.log.WithError(err).Debug("access denied: no peer credentials")
		a.refuse(c, deny("access denied: cannot identify the caller"))
		return peer, nil, false
	}
	log := a.log.WithFields(logrus.Fields{"peer_uid": peer.UID, "peer_pid": peer.PID})
	owner := peer.UID == a.owner
	if !owner && peer.UID != 0 {
		// Refused requests spend the uid's tokens, which bounds the log
		// lines another uid can cause.
		if ok, retry := a.limiter.allow(peer.UID, time.Now()); !ok {
			log.Debug("access denied (rate limited)")
			a.refuse(c, rateLimited(peer.UID, retry))
			return peer, nil, false
		}
		audit(log, c).Warn("access denied: another uid")
		a.refuse(c, deny("access denied for uid %d: this agent serves uid %d", peer.UID, a.owner))
		return peer, nil, false
	}
	if err := a.count.take(a.limits, peer.UID, owner); err != nil {
		if ok, _ := a.limiter.allow(peer.UID, time.Now()); ok {
			log.WithError(err).Warn("connection refused")
		}
		a.refuse(c, &localapi.Response{Err: localapi.Errorf(localapi.CodeRateLimited, "%v", err)})
		return peer, nil, false
	}
	return peer, log, true
}

// audit adds the pidfd-verified process fields to log: peer_exe and
// peer_comm when /proc tells, peer_pidfd=verified when the process was
// still alive after they were read (so the pid was not reused), or
// peer_pidfd=unsupported on kernels without SO_PEERPIDFD.
func audit(log *logrus.Entry, c net.Conn) *logrus.Entry {
	p, err := peercred.ProcessOf(c)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return log.WithField("peer_pidfd", "unsupported")
	case err != nil:
		return log.WithField("peer_pidfd", "gone")
	case !p.Verified:
		return log.WithField("peer_pidfd", "gone")
	}
	f := logrus.Fields{"peer_pidfd": "verified"}
	if p.Exe != "" {
		f["peer_exe"] = p.Exe
	}
	if p.Comm != "" {
		f["peer_comm"] = p.Comm
	}
	return log.WithFields(f)
}

// refuse answers resp on c and closes it, without keeping what the peer
// sends.
func (a *agentState) refuse(c net.Conn, resp *localapi.Response) {
	f, err := localapi.MarshalResponse(0, resp)
	if err != nil {
		_ = c.Close()
		return
	}
	select {
	case a.refusing <- struct{}{}:
	default:
		// Too many refusals at once: answer without waiting. The peer may
		// see EPIPE instead of the answer.
		_ = c.SetWriteDeadline(time.Now().Add(refuseGrace))
		_, _ = c.Write(f)
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-a.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseGrace))
		if _, err := c.Write(f); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		var scratch [512]byte
		for n := 0; n < refuseDrain; {
			m, err := c.Read(scratch[:])
			if n += m; err != nil {
				return
			}
		}
	}()
}

func rateLimited(uid uint32, retry time.Duration) *localapi.Response {
	return &localapi.Response{Err: localapi.Errorf(localapi.CodeRateLimited,
		"too many requests from uid %d; retry in %v", uid, (retry + time.Second - 1).Truncate(time.Second))}
}

// serveConn serves an admitted connection and releases its slot.
func (a *agentState) serveConn(ctx context.Context, c net.Conn, peer peercred.Peer, log *logrus.Entry) {
	defer a.count.release(peer.UID, peer.UID == a.owner)
	a.handle(ctx, c, peer, audit(log, c))
}
