// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/daemon/peercred"
)

// The credential provider: systemd's LoadCredential=NAME:/run/ov/credentials.sock.
//
// When a unit's LoadCredential= source is an AF_UNIX stream socket, systemd
// (in the "(sd-mkdcreds)" process it forks, as root, while setting up the
// unit's credentials; not PID 1 itself) binds its end to the abstract
// address "\0RANDOM/unit/UNIT/NAME", connects, writes nothing and reads the
// credential until EOF. The agent answers only a peer whose SO_PEERCRED uid
// is 0 (the socket is also root-only, 0600), whose address has that form,
// and whose unit has a root-owned policy in /etc/ov/credentials.d that names
// the secret. Anything else gets no value, and a journal entry names the
// unit and the credential (OV_UNIT, OV_CREDENTIAL), never a value.
//
// systemd takes a connection closed without data as an empty credential
// and starts the unit. So a refused request from systemd (uid 0, its
// address) is answered with more than systemd's 1 MiB credential limit of
// zero bytes (CREDENTIAL_SIZE_MAX, read with READ_FULL_FILE_FAIL_WHEN_LARGER):
// systemd fails the read with E2BIG and the unit's start with
// 243/CREDENTIALS. Other peers get nothing.

// maxCredConns bounds the credential requests served at once.
const maxCredConns = 16

// RefusalSize is how many zero bytes a refused request from systemd gets:
// one more than systemd accepts for a credential (1 MiB), so that the unit
// fails to start rather than start with an empty credential.
const RefusalSize = 1<<20 + 1

// failStart answers systemd's refused request (see RefusalSize).
func failStart(c net.Conn) {
	var zeros [32 << 10]byte
	for n := 0; n < RefusalSize; {
		m, err := c.Write(zeros[:min(len(zeros), RefusalSize-n)])
		if n += m; err != nil {
			return // systemd stopped reading: it has failed the read already
		}
	}
}

// credentialPeer parses systemd's peer address "@RANDOM/unit/UNIT/NAME" (Go
// shows the abstract address's leading NUL as "@").
func credentialPeer(addr net.Addr) (unit, name string, ok bool) {
	ua, isUnix := addr.(*net.UnixAddr)
	if !isUnix || ua == nil || !strings.HasPrefix(ua.Name, "@") {
		return "", "", false
	}
	parts := strings.SplitN(ua.Name[1:], "/", 4)
	if len(parts) != 4 || parts[1] != "unit" || !isHex(parts[0]) {
		return "", "", false
	}
	if !validUnitName(parts[2]) || !validCredentialID(parts[3]) {
		return "", "", false
	}
	return parts[2], parts[3], true
}

func isHex(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// printable shows a peer address that is not systemd's in a log line:
// quoted, at most 200 bytes.
func printable(addr net.Addr) string {
	if addr == nil {
		return `""`
	}
	s := addr.String()
	if len(s) > 200 {
		s = s[:200]
	}
	return fmt.Sprintf("%q", s)
}

// serveCredential answers one connection on the credentials socket.
func (a *agentState) serveCredential(ctx context.Context, c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	_ = c.SetDeadline(time.Now().Add(a.cfg.RequestTimeout))

	log := a.log.WithField("listener", "credentials")
	unit, name, addrOK := credentialPeer(c.RemoteAddr())
	if addrOK {
		log = log.WithFields(logrus.Fields{"unit": unit, "credential": name})
	} else {
		log = log.WithField("peer_addr", printable(c.RemoteAddr()))
	}
	peer, err := peercred.Of(c)
	if err != nil {
		log.WithError(err).Warn("credential refused: cannot identify the caller")
		return
	}
	log = log.WithFields(logrus.Fields{"peer_uid": peer.UID, "peer_pid": peer.PID})
	if !a.credPeerOK(peer) {
		// The socket is root-only; a peer of another uid means its mode was
		// changed. Its refusals spend its tokens, which bounds the log.
		if ok, _ := a.limiter.allow(peer.UID, time.Now()); ok {
			audit(log, c).Warn("credential refused: the caller is not the service manager (uid 0)")
		}
		return
	}
	if !addrOK {
		audit(log, c).Warn("credential refused: the caller's address is not systemd's (\\0RANDOM/unit/UNIT/NAME)")
		return
	}
	// From here on the caller is systemd asking for a unit: a refusal must
	// fail the unit's start.
	pol, err := readCredentialPolicy(a.credDir(), unit)
	if err != nil {
		log.WithError(err).Warn("credential refused: no usable policy for the unit")
		failStart(c)
		return
	}
	log = log.WithFields(logrus.Fields{"app": pol.App, "env": pol.Env})
	if !pol.Allows(name) {
		log.Warn("credential refused: not in the unit's policy")
		failStart(c)
		return
	}
	if a.cfg.App != "" && (pol.App != a.cfg.App || pol.Env != a.cfg.Env) {
		log.Warn(fmt.Sprintf("credential refused: the policy names %s/%s; this agent serves %s/%s only", pol.App, pol.Env, a.cfg.App, a.cfg.Env))
		failStart(c)
		return
	}
	version, written, err := a.writeCredential(ctx, c, pol.App, pol.Env, name)
	if err != nil {
		log.WithError(err).Warn("credential refused")
		if !written {
			failStart(c)
		}
		return
	}
	log.WithField("version", version).Info("served credential")
	a.used()
}

// credPeerOK is the peer check: root (systemd's credential setup runs as
// root in a process it forks; its pid is not 1, so the pid decides nothing).
func (a *agentState) credPeerOK(p peercred.Peer) bool { return p.UID == 0 }

func (a *agentState) credDir() string {
	if a.cfg.CredentialPolicyDir != "" {
		return a.cfg.CredentialPolicyDir
	}
	return CredentialPolicyDir
}

// writeCredential writes the value of app/env's secret name to c and
// wipes what it read; written says whether it started writing.
func (a *agentState) writeCredential(ctx context.Context, c net.Conn, app, env, name string) (version uint64, written bool, err error) {
	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	if a.key == nil || a.src == nil {
		return 0, false, errors.New("the agent is locked")
	}
	if a.key.Kind == KeyScoped && !hasScope(a.key, app, env) {
		return 0, false, fmt.Errorf("the agent is not unlocked for %s/%s", app, env)
	}
	e, err := a.src.Read(ctx, app, env)
	if err != nil {
		return 0, false, fmt.Errorf("read %s/%s: %w", app, env, err)
	}
	defer e.Wipe()
	for _, s := range e.Secrets { // a Source need not sort them (Lookup would)
		if s.Name != name {
			continue
		}
		if _, err := c.Write(s.Value); err != nil {
			return 0, true, fmt.Errorf("write the value: %w", err)
		}
		return s.Version, true, nil
	}
	return 0, false, fmt.Errorf("%s/%s has no secret %s", app, env, name)
}

// credAccept serves a credentials listener until it is closed.
func (a *agentState) credAccept(ctx context.Context, l net.Listener, stopping interface{ Load() bool }) error {
	slots := make(chan struct{}, maxCredConns)
	return a.acceptEach(l, stopping, func(c net.Conn) {
		select {
		case slots <- struct{}{}:
		default:
			a.log.WithField("listener", "credentials").Warn(fmt.Sprintf("credential refused: more than %d requests at once", maxCredConns))
			_ = c.Close()
			return
		}
		a.connMu.Lock()
		a.conns[c] = struct{}{}
		a.wg.Add(1)
		a.connMu.Unlock()
		go func() {
			defer func() {
				a.connMu.Lock()
				delete(a.conns, c)
				a.connMu.Unlock()
				a.wg.Done()
				<-slots
			}()
			a.serveCredential(ctx, c)
		}()
	})
}
