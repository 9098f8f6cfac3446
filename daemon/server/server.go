// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// Limits bound what one client may ask of the server.
type Limits struct {
	// MaxBodyBytes bounds request bodies, except commits and machine registrations.
	MaxBodyBytes int64
	// MaxCommitBytes bounds the body of PUT /v1/envs/{env_id}/manifest.
	MaxCommitBytes int64
	// MaxMachineBytes bounds the bodies of POST /v1/machines and PUT /v1/machines/{id}/wraps.
	MaxMachineBytes int64
	// MaxRecordBytes bounds one sealed record.
	MaxRecordBytes int
	// MaxSecrets bounds the records of one environment (422 too_many beyond).
	MaxSecrets int
	// MaxEnvBytes bounds the sealed records of one environment together (413 beyond), so that
	// reading it stays well inside what a client accepts (api.MaxResponse, in base64).
	MaxEnvBytes int64
	// KeyRate limits each device key and machine.
	KeyRate Rate
	// IPRate limits unauthenticated calls and failed authentications, per client address (per /64
	// for IPv6).
	IPRate Rate
	// LoginRate limits login attempts, login parameter look-ups and password changes per email.
	LoginRate Rate
	// KeepVersions bounds the sealed versions of each secret kept for history (0: all).
	KeepVersions int
}

// recordOverhead is what a record adds to its value: header, nonce, tag, and lp(name) for the
// longest name.
const recordOverhead = envelope.HeaderLen + envelope.NonceLen + envelope.TagLen + 2 + envelope.MaxNameLen

// DefaultLimits returns the limits ov-server uses unless flags say otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:    64 << 10,
		MaxCommitBytes:  32 << 20,
		MaxMachineBytes: 1 << 20,
		MaxRecordBytes:  1<<20 + recordOverhead,
		MaxSecrets:      10000,
		MaxEnvBytes:     64 << 20,
		KeyRate:         Rate{PerSecond: 20, Burst: 200},
		IPRate:          Rate{PerSecond: 2, Burst: 30},
		LoginRate:       Rate{PerSecond: 1.0 / 6, Burst: 10},
	}
}

// Config configures [New].
type Config struct {
	Store store.Store
	// Log receives one entry per failed request and per internal error; never a secret.
	Log    *logrus.Entry
	Limits Limits
	// Registration is who may create an account; empty means open. DisableRegistration, when set,
	// overrides it with closed.
	Registration        Registration
	DisableRegistration bool
	// Quotas bound what one account may hold (zero: no quotas).
	Quotas Quotas
	// Overload sheds requests beyond a concurrency limit (zero: never).
	Overload Overload
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server is the HTTP API. It is an [http.Handler].
type Server struct {
	st           store.Store
	log          *logrus.Entry
	lim          Limits
	registration Registration
	quotas       Quotas
	quotaLocks   accountLocks
	now          func() time.Time
	secret       []byte // server secret, for made-up login parameters
	envs         envCache
	machines     machineCache
	heads        headCache     // feed.go
	feed         store.Feed    // nil without a change feed (feed.go)
	gen          atomic.Uint64 // changes reported by the feed (feed.go)
	auditor      *auditor
	shed         *shedder
	watch        watchHub // watch.go

	keyLim, ipLim, loginLim *limiter
	metrics                 *metrics
	mux                     *http.ServeMux
}

// New returns a Server on cfg.Store. It reads (or creates) the server secret.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("create server: no store")
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = logrus.NewEntry(l)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	secret, err := cfg.Store.ServerSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	reg := cfg.Registration
	if reg == "" {
		reg = RegistrationOpen
	}
	if cfg.DisableRegistration {
		reg = RegistrationClosed
	}
	if _, err := ParseRegistration(string(reg)); err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	s := &Server{
		st: cfg.Store, log: cfg.Log, lim: cfg.Limits, registration: reg, quotas: cfg.Quotas, now: cfg.Now, secret: secret,
		keyLim: newLimiter(cfg.Limits.KeyRate), ipLim: newLimiter(cfg.Limits.IPRate), loginLim: newLimiter(cfg.Limits.LoginRate),
		metrics: newMetrics(cfg.Store), mux: http.NewServeMux(), shed: newShedder(cfg.Overload),
	}
	s.envs.gen, s.machines.gen, s.heads.gen = &s.gen, &s.gen, &s.gen
	if err := s.startFeed(ctx); err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	s.metrics.watchFeed(s.feedCurrent)
	s.auditor = newAuditor(cfg.Store, cfg.Log, s.metrics)
	s.routes()
	return s, nil
}

// Close writes the audit entries still queued and stops the change feed. Call it after the HTTP
// server has stopped.
func (s *Server) Close() {
	s.auditor.close()
	if s.feed != nil {
		s.feed.Close()
	}
}

// access says who may call a route.
type access int

const (
	public          access = iota // no credential; rate limited per client address
	deviceOnly                    // a device API key
	deviceOrMachine               // a device key or a machine key; the handler checks the machine's scope
	machineOnly                   // a machine key
)

type route struct {
	access access
	limit  int64  // body size
	action string // audit action; "" for none
	h      func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error
}

// reqCtx carries what the wrapper learned about a request to the handler, and back for the audit.
type reqCtx struct {
	p         *principal // nil on public routes
	accountID []byte     // the account the audit entry belongs to
	claimed   string     // the actor when no principal authenticated: a refused genuine credential, or the device being enrolled
	target    string
	account   *store.Account // loaded on demand
	// liveVerifier is set when the machine came from the cache: the handler must check in the
	// database that a machine with this verifier still exists.
	liveVerifier []byte
}

func (s *Server) routes() {
	small, commit, machines := s.lim.MaxBodyBytes, s.lim.MaxCommitBytes, s.lim.MaxMachineBytes
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)

	s.handle("POST /v1/register", route{public, small, "account.register", s.register})
	s.handle("POST /v1/login/params", route{public, small, "", s.loginParams})
	s.handle("POST /v1/login", route{public, small, "auth.login", s.login})
	s.handle("GET /v1/account", route{deviceOnly, small, "", s.getAccount})
	s.handle("PUT /v1/account/password", route{deviceOnly, small, "account.password", s.changePassword})
	s.handle("GET /v1/devices", route{deviceOnly, small, "", s.listDevices})
	s.handle("DELETE /v1/devices/{key_id}", route{deviceOnly, small, "device.revoke", s.revokeDevice})
	s.handle("GET /v1/apps", route{deviceOrMachine, small, "", s.listApps})
	s.handle("POST /v1/apps", route{deviceOnly, small, "app.create", s.createApp})
	s.handle("POST /v1/apps/{app_id}/envs", route{deviceOnly, small, "env.create", s.createEnv})
	s.handle("GET /v1/envs/{env_id}", route{deviceOrMachine, small, "env.read", s.getEnv})
	s.handle("GET /v1/envs/{env_id}/watch", route{deviceOrMachine, small, "", s.watchEnv})
	s.handle("PUT /v1/envs/{env_id}/manifest", route{deviceOnly, commit, "env.commit", s.commit})
	s.handle("GET /v1/audit", route{deviceOnly, small, "", s.listAudit})
	s.handle("GET /v1/envs/{env_id}/history", route{deviceOnly, small, "env.history", s.getHistory})
	s.handle("POST /v1/envs/{env_id}/history/records", route{deviceOnly, commit, "env.history.read", s.getHistoryRecords})
	s.handle("POST /v1/machines", route{deviceOnly, machines, "machine.create", s.createMachine})
	s.handle("GET /v1/machines", route{deviceOnly, small, "", s.listMachines})
	s.handle("DELETE /v1/machines/{machine_id}", route{deviceOnly, small, "machine.revoke", s.revokeMachine})
	s.handle("PUT /v1/machines/{machine_id}/wraps", route{deviceOnly, machines, "machine.wraps", s.putMachineWraps})
	s.handle("GET /v1/machine", route{machineOnly, small, "", s.machineSelf})
	s.handle("GET /v1/revocations", route{deviceOnly, small, "", s.getRevocations})
	s.handle("PUT /v1/revocations", route{deviceOnly, machines, "machine.revocations", s.putRevocations})
	s.handle("PUT /v1/envs/{env_id}/access/{epoch}", route{deviceOnly, machines, "env.access", s.putEnvAccess})
}

// ServeHTTP implements [http.Handler]: metrics, panics, common headers, then the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.shed != nil && strings.HasPrefix(r.URL.Path, "/v1/") && !isWatch(r.URL.Path) {
		if !s.shed.acquire(r) {
			s.metrics.shed.Inc()
			s.metrics.observe("shed", http.StatusServiceUnavailable, time.Since(start))
			w.Header().Set("Cache-Control", "no-store")
			writeError(w, errOverloaded)
			return
		}
		defer s.shed.release()
	}
	s.metrics.inFlight.Add(1)
	rec := &statusRecorder{ResponseWriter: w}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.WithFields(logrus.Fields{"route": r.Pattern, "panic": fmt.Sprint(v), "stack": string(debug.Stack())}).Error("handler panicked")
			if rec.status == 0 {
				writeError(rec, errInternal)
			}
		}
		s.metrics.inFlight.Add(-1)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.observe(route, status, time.Since(start))
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// unrouted answers a request that matches no route (404, or 405 with Allow) with an ErrorBody,
// like every other error.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &headerProbe{h: http.Header{}}
	h.ServeHTTP(probe, r)
	if allow := probe.h.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if probe.status == http.StatusMethodNotAllowed {
		writeError(w, errorf(http.StatusMethodNotAllowed, api.CodeBadRequest, "method %s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, notFound("no such endpoint: %s %s", r.Method, r.URL.Path))
}

// headerProbe records the status and headers a handler writes, and drops the body.
type headerProbe struct {
	h      http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.h }

func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *headerProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// handle registers a route behind the wrapper that limits the body, authenticates, rate limits,
// answers errors and writes the audit entry.
func (s *Server) handle(pattern string, rt route) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rc := &reqCtx{}
		if s.feed != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w = &syncWriter{ResponseWriter: w, s: s, ctx: r.Context()}
		}
		err := s.run(w, r, rt, rc)
		ae := asAPIError(err)
		if err != nil && ae == nil {
			s.log.WithFields(logrus.Fields{"route": pattern, "actor": rc.actor(), "error": err.Error()}).Error("request failed")
			ae = errInternal
		}
		switch {
		case ae != nil && ae.code == errRateLimitedCode:
			// Not audited: a flood must not turn into audit writes.
		case rc.accountID == nil && rt.access != public:
			// A failed authentication names no account; it is rate limited, not audited.
		case rt.action != "":
			s.audit(r, rc, rt.action, ae)
		case rc.claimed != "":
			// A revoked or expired credential was used on an unaudited route.
			s.audit(r, rc, "auth", ae)
		}
		if ae != nil {
			if ae.status >= 500 {
				s.log.WithFields(logrus.Fields{"route": pattern, "status": ae.status}).Warn(ae.msg)
			} else {
				s.log.WithFields(logrus.Fields{"route": pattern, "status": ae.status, "actor": rc.actor()}).Debug(ae.msg)
			}
			writeError(w, ae)
		}
	})
}

const errRateLimitedCode = "rate_limited"

// run rate limits or authenticates (from the headers alone), then bounds the body, then calls the
// handler. Nothing an unauthenticated caller sends reaches the database unless it passed the
// per-address limit.
func (s *Server) run(w http.ResponseWriter, r *http.Request, rt route, rc *reqCtx) error {
	if rt.access == public {
		if ok, wait := s.ipLim.allow(clientKey(r), s.now()); !ok {
			s.metrics.limited("ip")
			return rateLimited(wait)
		}
	} else {
		p, err := s.authenticate(r, rc)
		if err != nil {
			return err
		}
		rc.p, rc.accountID = p, p.accountID()
		switch {
		case p.machine != nil && rt.access == deviceOnly:
			return forbidden("machine keys are read-only and may not call %s", r.Pattern)
		case p.device != nil && rt.access == machineOnly:
			return forbidden("only machine keys may call %s", r.Pattern)
		}
		if ok, wait := s.keyLim.allow(p.actor(), s.now()); !ok {
			s.metrics.limited("key")
			return rateLimited(wait)
		}
	}
	if r.ContentLength > rt.limit {
		return tooLarge("request body is %d bytes, at most %d", r.ContentLength, rt.limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, rt.limit)
	return rt.h(w, r, rc)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.WithField("error", err.Error()).Warn("readiness check failed")
		writeError(w, errorf(http.StatusServiceUnavailable, "unavailable", "database not ready"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// decode reads one JSON value from the request body.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		var extra json.RawMessage
		if err2 := dec.Decode(&extra); err2 != io.EOF {
			if err2 == nil {
				return badRequest("decode request: trailing data after the JSON body")
			}
			err = err2
		}
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge("request body larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return badRequest("decode request: empty body")
	}
	return badRequest("decode request: %v", err)
}

// clientKey is the rate-limit key of the client's address: the IP, the /64 for IPv6, "unix" for a
// unix socket peer.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "unix"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return "ip6:" + ip.Mask(net.CIDRMask(64, 128)).String()
	}
	return "ip:" + ip.String()
}

// remoteAddr is the client's address as the audit log records it.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "unix"
	}
	return host
}

func (s *Server) audit(r *http.Request, rc *reqCtx, action string, ae *apiError) {
	result := "ok"
	if ae != nil {
		result = ae.code
	}
	e := &store.AuditEntry{
		AccountID: rc.accountID, Time: s.now(), Actor: rc.actor(), Action: action, Target: rc.target,
		RemoteAddr: remoteAddr(r), Result: result,
	}
	// A change is answered once its entry is durable; a read or a refusal is answered at once and
	// its entry written with the next batch (audit.go says what a crash can lose).
	s.auditor.add(e, ae == nil && !readAction(action))
}
