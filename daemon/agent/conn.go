// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/localapi"
	ovnames "github.com/opaquevault/opaquevault/internal/names"
	"github.com/opaquevault/opaquevault/internal/peercred"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// maxNames bounds the names of one GET.
const maxNames = 10000

// handle serves one admitted connection (see admit in guard.go): one
// request, one answer. log carries the peer's audit fields.
func (a *agentState) handle(ctx context.Context, c net.Conn, peer peercred.Peer, log *logrus.Entry) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	_ = c.SetReadDeadline(time.Now().Add(a.cfg.RequestTimeout))
	p, err := readRequest(c, a.maxFrame(peer))
	if err != nil {
		if !errors.Is(err, io.EOF) {
			log.WithError(err).Debug("unreadable request")
			a.reply(c, log, 0, &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "read request: %v", err)})
		}
		return
	}
	defer clear(p) // UNLOCK frames hold keys
	req, err := localapi.ParseRequest(p)
	if err == nil && req.Op == localapi.OpRun && runOff.Load() {
		log.Info("malformed request")
		a.reply(c, log, 0, unknownOpAnswer(req.Op))
		return
	}
	if err != nil {
		log.WithError(err).Info("malformed request")
		a.reply(c, log, 0, &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%v", err)})
		return
	}
	log = log.WithField("request", req.Op.String())

	// Only requests that touch secrets (names or values) spend tokens: STATUS, LOCK and UNLOCK are
	// free, so checking or locking an agent never locks a user out of it. Refused requests spend
	// tokens too, which bounds the log lines a peer can cause.
	allowed := a.authorized(peer, req.Op)
	if ok, retry := a.limited(peer.UID, req.Op, allowed); !ok {
		log.WithField("retry_after", (retry + time.Second - 1).Truncate(time.Second).String()).Warn("rate limited")
		a.reply(c, log, req.Op, rateLimited(peer.UID, retry))
		return
	}
	var resp *localapi.Response
	var done func()
	if allowed {
		resp, done = a.dispatch(ctx, log, peer, req)
	} else {
		log.Warn("access denied")
		resp = deny("access denied for uid %d: this agent serves uid %d", peer.UID, a.owner)
	}
	a.reply(c, log, req.Op, resp)
	if done != nil {
		done()
	}
	a.afterAnswer(log, peer, req, resp)
}

// maxFrame is the largest request peer may send: a full frame for the
// agent's uid, a small one for root (STATUS and LOCK).
func (a *agentState) maxFrame(peer peercred.Peer) int {
	if peer.UID == a.owner {
		return localapi.MaxFrame
	}
	return maxOtherFrame
}

func deny(format string, args ...any) *localapi.Response {
	return &localapi.Response{Err: localapi.Errorf(localapi.CodeDenied, format, args...)}
}

// authorized: the owner may do everything, root only STATUS and LOCK.
func (a *agentState) authorized(p peercred.Peer, op localapi.Op) bool {
	if p.UID == a.owner {
		return true
	}
	return p.UID == 0 && (op == localapi.OpStatus || op == localapi.OpLock)
}

// reply encodes and writes resp, then clears the encoded frame.
func (a *agentState) reply(c net.Conn, log *logrus.Entry, op localapi.Op, resp *localapi.Response) {
	f, err := localapi.MarshalResponse(op, resp)
	if err != nil {
		log.WithError(err).Error("cannot encode answer")
		f, _ = localapi.MarshalResponse(op, &localapi.Response{Err: localapi.Errorf(localapi.CodeInternal, "encode answer: %v", err)})
	}
	defer clear(f)
	_ = c.SetWriteDeadline(time.Now().Add(a.cfg.RequestTimeout))
	if _, err := c.Write(f); err != nil {
		log.WithError(err).Debug("cannot write answer")
	}
}

// dispatch answers req; done, when not nil, must be called after the
// answer is written (it wipes the values the answer points to).
func (a *agentState) dispatch(ctx context.Context, log *logrus.Entry, peer peercred.Peer, req *localapi.Request) (resp *localapi.Response, done func()) {
	switch req.Op {
	case localapi.OpStatus:
		log.Debug("status")
		return &localapi.Response{Status: a.status()}, nil
	case localapi.OpLock:
		if a.lock("LOCK by uid " + uitoa(peer.UID)) {
			log.Info("locked by request")
		}
		return &localapi.Response{}, nil
	case localapi.OpUnlock:
		return a.unlock(ctx, log, req.Unlock), nil
	case localapi.OpList, localapi.OpGet:
		return a.read(ctx, log, req)
	case localapi.OpScopes, localapi.OpInfo, localapi.OpGenerate:
		return a.more(ctx, log, req), nil
	case localapi.OpRun:
		return a.run(ctx, log, req)
	}
	return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "unknown request %s", req.Op)}, nil
}

// read serves LIST and GET. A GET answer points into the decrypted
// environment: the caller must call done (which wipes it) after writing.
func (a *agentState) read(ctx context.Context, log *logrus.Entry, req *localapi.Request) (resp *localapi.Response, done func()) {
	app, env, err := normalizeScope(req.App, req.Env)
	if err != nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%v", err)}, nil
	}
	log = log.WithFields(logrus.Fields{"app": app, "env": env})
	if req.Op == localapi.OpGet {
		if r := checkNames(req.Names); r != nil {
			return r, nil
		}
	}
	if a.cfg.App != "" && (app != a.cfg.App || env != a.cfg.Env) {
		log.Warn("request for a scope this agent does not serve")
		return deny("this agent serves %s/%s only, not %s/%s", a.cfg.App, a.cfg.Env, app, env), nil
	}

	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	if a.key == nil || a.src == nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeLocked, "agent is locked")}, nil
	}
	if a.key.Kind == KeyScoped && !hasScope(a.key, app, env) {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeLocked, "agent is not unlocked for %s/%s", app, env)}, nil
	}

	if req.Op == localapi.OpList {
		if n, ok := a.src.(Namer); ok {
			names, err := n.Names(ctx, app, env)
			if err != nil {
				return a.readFailed(log, app, env, err), nil
			}
			log.WithField("secrets", len(names)).Info("listed names")
			return &localapi.Response{Names: names}, nil
		}
	}
	e, err := a.src.Read(ctx, app, env)
	if err != nil {
		return a.readFailed(log, app, env, err), nil
	}
	wipe := true
	defer func() {
		if wipe {
			e.Wipe()
		}
	}()

	if req.Op == localapi.OpList {
		names := make([]string, len(e.Secrets))
		for i, s := range e.Secrets {
			names[i] = s.Name
		}
		log.WithField("secrets", len(names)).Info("listed names")
		return &localapi.Response{Names: names}, nil
	}

	byName := make(map[string]*remote.Secret, len(e.Secrets))
	for i := range e.Secrets {
		byName[e.Secrets[i].Name] = &e.Secrets[i]
	}
	var missing []string
	out := make([]localapi.Secret, 0, len(req.Names))
	for _, n := range req.Names {
		s, ok := byName[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		out = append(out, localapi.Secret{Name: s.Name, Version: s.Version, Value: s.Value})
	}
	if len(missing) > 0 {
		log.WithField("missing", strings.Join(missing, ",")).Info("secrets not found")
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeNotFound, "%s not found in %s/%s: %s",
			plural(len(missing), "secret"), app, env, quoteList(missing))}, nil
	}
	log.WithField("secrets", strings.Join(req.Names, ",")).Info("served secrets")
	wipe = false // the caller wipes e after writing the answer
	return &localapi.Response{Secrets: out}, e.Wipe
}

func (a *agentState) readFailed(log *logrus.Entry, app, env string, err error) *localapi.Response {
	code := localapi.CodeOf(err)
	switch {
	case errors.Is(err, remote.ErrAppNotFound), errors.Is(err, remote.ErrEnvNotFound):
		code = localapi.CodeNotFound
	case errors.Is(err, api.ErrUnreachable), errors.Is(err, remote.ErrNoCache), errors.Is(err, remote.ErrCacheTooOld):
		code = localapi.CodeServerDown
	}
	log.WithError(err).WithField("code", string(code)).Warn("read failed")
	return &localapi.Response{Err: localapi.Errorf(code, "read %s/%s: %v", app, env, err)}
}

func checkNames(names []string) *localapi.Response {
	if len(names) == 0 {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "no secret names given: GET returns only the names asked for")}
	}
	if len(names) > maxNames {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%d names asked, at most %d", len(names), maxNames)}
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if !ovnames.ValidSecret(n) {
			return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "invalid secret name of %d bytes", len(n))}
		}
		if seen[n] {
			return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "secret %q asked twice", n)}
		}
		seen[n] = true
	}
	return nil
}

func hasScope(k *Key, app, env string) bool {
	for _, e := range k.Env {
		if e.Scope.App == app && e.Scope.Env == env {
			return true
		}
	}
	return false
}

// unlock installs keys handed over by UNLOCK; u's bytes are in the request
// frame, which the handler clears.
func (a *agentState) unlock(ctx context.Context, log *logrus.Entry, u *localapi.Unlock) *localapi.Response {
	bad := func(format string, args ...any) *localapi.Response {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, format, args...)}
	}
	switch {
	case len(u.AccountKey) > 0 && len(u.EnvKeys) > 0:
		return bad("unlock: give the account key or environment keys, not both")
	case len(u.AccountKey) == 0 && len(u.EnvKeys) == 0:
		return bad("unlock: no key given")
	case len(u.AccountKey) > 0 && len(u.AccountKey) != localapi.KeyLen:
		return bad("unlock: account key of %d bytes, want %d", len(u.AccountKey), localapi.KeyLen)
	case len(u.AccountID) > 64:
		return bad("unlock: account id of %d bytes", len(u.AccountID))
	}
	k := &Key{Kind: KeyAccount, AccountID: append([]byte(nil), u.AccountID...), AKVersion: u.AKVersion}
	fail := func(r *localapi.Response) *localapi.Response { k.Destroy(); return r }
	if len(u.AccountKey) > 0 {
		b, err := secmem.New(localapi.KeyLen)
		if err != nil {
			return fail(&localapi.Response{Err: localapi.Errorf(localapi.CodeInternal, "unlock: %v", err)})
		}
		copy(b.Bytes(), u.AccountKey)
		k.Bytes = b
	} else {
		k.Kind = KeyScoped
		seen := map[localapi.Scope]bool{}
		for _, e := range u.EnvKeys {
			app, env, err := normalizeScope(e.App, e.Env)
			if err != nil {
				return fail(bad("unlock: %v", err))
			}
			sc := localapi.Scope{App: app, Env: env}
			if seen[sc] {
				return fail(bad("unlock: %s given twice", sc))
			}
			seen[sc] = true
			if len(e.Key) != localapi.KeyLen {
				return fail(bad("unlock: key of %s has %d bytes, want %d", sc, len(e.Key), localapi.KeyLen))
			}
			b, err := secmem.New(localapi.KeyLen)
			if err != nil {
				return fail(&localapi.Response{Err: localapi.Errorf(localapi.CodeInternal, "unlock: %v", err)})
			}
			copy(b.Bytes(), e.Key)
			k.Env = append(k.Env, EnvKey{Scope: sc, Key: b})
		}
	}
	u.Wipe()
	if err := a.install(ctx, k, "UNLOCK"); err != nil {
		log.WithError(err).Warn("unlock failed")
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeOf(err), "unlock: %v", err)}
	}
	log.WithField("key", string(k.Kind)).Info("unlocked by request")
	return &localapi.Response{}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return uitoa(uint32(n)) + " " + what + "s"
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + strings.ReplaceAll(n, `"`, `\"`) + `"`
	}
	return strings.Join(q, ", ")
}

func uitoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// limited takes a token from uid's bucket for LIST, GET, RUN (one token: it is one request), SCOPES, INFO, GENERATE and every refused
// request; it reports false (and when to retry) when there is none.
func (a *agentState) limited(uid uint32, op localapi.Op, authorized bool) (bool, time.Duration) {
	if authorized && (op == localapi.OpStatus || op == localapi.OpLock || op == localapi.OpUnlock) {
		return true, 0
	}
	return a.limiter.allow(uid, time.Now())
}
