// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/credentials"
	"github.com/opaquevault/opaquevault/internal/localapi"
	ovnames "github.com/opaquevault/opaquevault/internal/names"
	"github.com/opaquevault/opaquevault/internal/sd"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// ErrNoListener means the agent has no socket: it was not socket-activated
// and no socket path was given.
var ErrNoListener = errors.New("no socket to serve: not started by ov-agent.socket and no socket path given")

// agentState is a running agent, created by [Serve].
type agentState struct {
	cfg   Config
	log   *logrus.Entry
	owner uint32
	pid   uint32

	// keyMu guards key and src: requests that use them hold it for reading
	// for the whole Source read, LOCK/UNLOCK/reload hold it for writing, so
	// a key is never destroyed under a running read.
	keyMu sync.RWMutex
	key   *Key
	src   Source
	since time.Time

	reloadMu   sync.Mutex
	reloadFail atomic.Pointer[string] // last reload failure, shown in the status

	limiter *limiter
	limits  Limits

	// count, refusing: connection admission (guard.go).
	count    connCount
	refusing chan struct{}
	// lockouts, distinct: the policy of policy.go.
	lockouts lockout
	distinct distinct
	// lockNote says why the agent locked itself (idle, lockout), for STATUS=.
	lockNote atomic.Pointer[string]
	// idleMu guards the idle lock's clock.
	idleMu    sync.Mutex
	lastUse   time.Time
	idleTimer *time.Timer
	idleShown time.Time // the deadline STATUS= showed last
	// bus is told about state changes; it is set once D-Bus is up, while
	// requests may already be running.
	bus atomic.Pointer[sinkBox]

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// stateSink is told about state changes (the D-Bus object).
type stateSink interface {
	stateChanged(text string)
	close()
}

type sinkBox struct{ s stateSink }

func (a *agentState) sink() stateSink {
	if b := a.bus.Load(); b != nil {
		return b.s
	}
	return nopSink{}
}

type nopSink struct{}

func (nopSink) stateChanged(string) {}
func (nopSink) close()              {}

// Serve runs the agent until ctx is done or it receives SIGTERM or SIGINT;
// SIGHUP reloads. It returns nil after a clean stop, and an error when it
// cannot start: no listener ([ErrNoListener]), no Opener, a machine key
// credential that cannot be read or opened (credentials errors), or invalid
// App/Env. The listeners are closed when it returns.
func Serve(ctx context.Context, cfg Config) error {
	a, err := newAgent(cfg)
	if err != nil {
		closeAll(cfg.Listeners)
		closeAll(cfg.CredentialListeners)
		return err
	}
	log := a.log
	if err := secmem.Harden(); err != nil {
		log.WithError(err).Warn("could not fully harden the process")
	}
	if secmem.OnMlockFailure == nil {
		secmem.OnMlockFailure = func(err error) { log.WithError(err).Warn("key memory not locked") }
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ls, cls := cfg.Listeners, cfg.CredentialListeners
	defer func() { closeAll(cls) }()
	if len(ls) == 0 {
		names := []string{"agent"}
		if cfg.Mode == ModeSystem {
			names = append(names, "credentials") // ov-agent-credentials.socket
		}
		named, err := sd.ListenersNamed(names...)
		if err != nil {
			return err
		}
		ls = named["agent"]
		if len(cls) == 0 {
			cls = named["credentials"]
		} else {
			closeAll(named["credentials"])
		}
	}
	if len(ls) == 0 && cfg.SocketPath != "" {
		l, err := Listen(cfg.SocketPath)
		if err != nil {
			return err
		}
		ls = []net.Listener{l}
	}
	if len(ls) == 0 {
		return ErrNoListener
	}
	defer closeAll(ls)

	if cfg.MachineKeyCredential != "" {
		if err := a.loadMachineKey(ctx); err != nil {
			log.WithError(err).Error("cannot load the machine key")
			_ = sd.Status("failed: " + err.Error())
			return err
		}
	}
	defer a.wipe()

	a.bus.Store(&sinkBox{a.startBus(ctx)})
	defer func() { a.sink().close() }()
	if cfg.RestartDir != "" {
		rctx, stopRestarts := context.WithCancel(ctx)
		defer stopRestarts()
		go a.startRestarts(rctx)
	}

	// Requests run under reqCtx, which outlives ctx so that a stop lets
	// them finish (drain cancels it after ShutdownTimeout).
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	var stopping atomic.Bool
	acceptErr := make(chan error, len(ls)+len(cls))
	for _, l := range ls {
		go func() { acceptErr <- a.acceptLoop(reqCtx, l, &stopping) }()
	}
	for _, l := range cls {
		go func() { acceptErr <- a.credAccept(reqCtx, l, &stopping) }()
	}

	st := a.status()
	if err := sd.Ready(st.Text()); err != nil {
		log.WithError(err).Warn("cannot notify systemd")
	}
	log.WithFields(logrus.Fields{"state": st.State, "mode": cfg.Mode.String(), "key": st.Key, "fingerprint": st.Fingerprint}).
		Info("agent ready")

	wdCtx, stopWD := context.WithCancel(context.Background())
	defer stopWD()
	go sd.Watchdog(wdCtx)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: context done")
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				a.reload(ctx, "SIGHUP")
				continue
			}
			log.WithField("signal", s.String()).Info("stopping")
			break loop
		case err := <-acceptErr:
			if err == nil {
				err = net.ErrClosed
			}
			runErr = fmt.Errorf("serve agent socket: %w", err)
			log.WithError(err).Error("listener failed")
			break loop
		}
	}

	_ = sd.Stopping()
	stopping.Store(true)
	closeAll(ls)
	closeAll(cls)
	a.drain(cancelReqs)
	a.lock("stop")
	log.Info("agent stopped")
	return runErr
}

func newAgent(cfg Config) (*agentState, error) {
	if cfg.Open == nil {
		return nil, errors.New("start agent: no key source (Config.Open)")
	}
	if (cfg.App == "") != (cfg.Env == "") {
		return nil, errors.New("start agent: give both --app and --env, or neither")
	}
	if cfg.App != "" {
		var err error
		if cfg.App, cfg.Env, err = normalizeScope(cfg.App, cfg.Env); err != nil {
			return nil, fmt.Errorf("start agent: %w", err)
		}
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = localapi.Timeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = logrus.NewEntry(sd.NewLogger(logrus.InfoLevel))
	}
	if cfg.App != "" {
		log = log.WithFields(logrus.Fields{"app": cfg.App, "env": cfg.Env})
	}
	r := cfg.Rate
	if r == (Rate{}) {
		r = DefaultRate
	}
	lim := cfg.Limits.withDefaults()
	if lim.MaxConns < 0 || lim.MaxConnsPerUID < 0 || lim.MaxConnsPerUID >= lim.MaxConns {
		return nil, fmt.Errorf("start agent: connections per uid (%d) must be at least 1 and below connections in all (%d)", lim.MaxConnsPerUID, lim.MaxConns)
	}
	if lim.LockoutWindow < 0 || lim.DistinctWindow < 0 {
		return nil, errors.New("start agent: negative lockout or distinct-secret window")
	}
	return &agentState{
		cfg:      cfg,
		log:      log,
		owner:    uint32(os.Getuid()),
		pid:      uint32(os.Getpid()),
		limiter:  newLimiter(r),
		limits:   lim,
		count:    connCount{perUID: map[uint32]int{}},
		refusing: make(chan struct{}, maxRefusing),
		conns:    map[net.Conn]struct{}{},
	}, nil
}

func normalizeScope(app, env string) (string, string, error) {
	a, err := ovnames.NormalizeScope("app", app)
	if err != nil {
		return "", "", fmt.Errorf("check app name: %w", err)
	}
	e, err := ovnames.NormalizeScope("env", env)
	if err != nil {
		return "", "", fmt.Errorf("check env name: %w", err)
	}
	return a, e, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// loadMachineKey reads the machine key credential, opens a Source for it
// and installs both, replacing (and wiping) what was held.
func (a *agentState) loadMachineKey(ctx context.Context) error {
	buf, err := credentials.LoadWith(a.cfg.MachineKeyCredential, credentials.ReadOptions{Size: credentials.MachineKeySize})
	if err != nil {
		return fmt.Errorf("load machine key: %w", err)
	}
	k := &Key{Kind: KeyMachine, Bytes: buf}
	return a.install(ctx, k, "machine key credential "+a.cfg.MachineKeyCredential)
}

// install opens a Source for k and makes it current. On failure k is
// destroyed and what was held stays.
func (a *agentState) install(ctx context.Context, k *Key, from string) error {
	src, err := a.cfg.Open(ctx, k)
	if err != nil {
		k.Destroy()
		return fmt.Errorf("open key: %w", err)
	}
	a.keyMu.Lock()
	oldK, oldS := a.key, a.src
	a.key, a.src, a.since = k, src, time.Now()
	a.lockNote.Store(nil)
	a.keyMu.Unlock()
	a.stopIdle()
	if a.idleLockOn(k) {
		a.touch(time.Now())
	}
	release(oldK, oldS)
	a.log.WithFields(logrus.Fields{"key": string(k.Kind), "fingerprint": k.Fingerprint(), "from": from}).Info("key loaded")
	a.changed()
	return nil
}

func release(k *Key, s Source) {
	if w, ok := s.(interface{ Wipe() }); ok {
		w.Wipe()
	}
	k.Destroy()
}

// lock wipes the key. It waits for running reads.
func (a *agentState) lock(why string) bool { return a.lockWith(why, "") }

// lockWith wipes the key like lock; note, when not empty, is shown in
// STATUS= ("locked (note)") until the next key is installed.
func (a *agentState) lockWith(why, note string) bool {
	a.keyMu.Lock()
	k, s := a.key, a.src
	a.key, a.src, a.since = nil, nil, time.Time{}
	if k != nil && note != "" {
		a.lockNote.Store(&note)
	}
	a.keyMu.Unlock()
	a.stopIdle()
	if k == nil {
		return false
	}
	release(k, s)
	a.log.WithField("reason", why).Info("locked: key wiped")
	a.changed()
	return true
}

// wipe is the last line of defence on return from Serve.
func (a *agentState) wipe() { a.lock("exit") }

// reload re-reads the machine key credential between RELOADING=1 and
// READY=1. On failure the key held before stays and the status says so.
func (a *agentState) reload(ctx context.Context, why string) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	_ = sd.Reloading()
	a.log.WithField("reason", why).Info("reloading")
	var err error
	if a.cfg.MachineKeyCredential != "" {
		err = a.loadMachineKey(ctx)
	}
	if err != nil {
		msg := err.Error()
		a.reloadFail.Store(&msg)
		a.log.WithError(err).Error("reload failed; keeping the key held before")
	} else {
		a.reloadFail.Store(nil)
	}
	_ = sd.Ready(a.statusText())
	a.sink().stateChanged(a.status().Text())
	return err
}

func (a *agentState) changed() {
	t := a.statusText()
	_ = sd.Status(t)
	a.sink().stateChanged(a.status().Text())
}

func (a *agentState) statusText() string {
	t := a.status().Text()
	a.keyMu.RLock()
	k := a.key
	a.keyMu.RUnlock()
	if n := a.lockNote.Load(); n != nil && k == nil {
		t += " (" + *n + ")"
	}
	// The idle lock's time, which used() keeps within a minute (a tenth of
	// the interval when shorter) of the truth.
	if dl := a.idleDeadline(k); !dl.IsZero() {
		t += "; idle lock at " + dl.UTC().Format(time.RFC3339)
		a.idleMu.Lock()
		a.idleShown = dl
		a.idleMu.Unlock()
	}
	if f := a.reloadFail.Load(); f != nil {
		t += " (reload failed: " + *f + ")"
	}
	return t
}

func (a *agentState) status() *localapi.Status {
	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	return a.statusLocked()
}

// statusLocked is status for a caller that holds keyMu.
func (a *agentState) statusLocked() *localapi.Status {
	s := &localapi.Status{
		State:    localapi.StateLocked,
		App:      a.cfg.App,
		Env:      a.cfg.Env,
		Mode:     a.cfg.Mode.String(),
		OwnerUID: a.owner,
		PID:      a.pid,
		Version:  a.cfg.Version,
	}
	if a.key != nil {
		s.State = localapi.StateUnlocked
		s.Key = string(a.key.Kind)
		s.Fingerprint = a.key.Fingerprint()
		s.Since = a.since
		for _, e := range a.key.Env {
			s.Scopes = append(s.Scopes, e.Scope)
		}
	}
	return s
}

// acceptLoop accepts until l is closed; it returns nil then, or the error
// that made accepting impossible.
func (a *agentState) acceptLoop(ctx context.Context, l net.Listener, stopping *atomic.Bool) error {
	return a.acceptEach(l, stopping, func(c net.Conn) {
		peer, log, ok := a.admit(c)
		if !ok {
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
			}()
			a.serveConn(ctx, c, peer, log)
		}()
	})
}

// acceptEach accepts connections on l and hands each to serve, retrying
// transient errors, until l is closed (nil) or accepting fails for good.
func (a *agentState) acceptEach(l net.Listener, stopping interface{ Load() bool }, serve func(net.Conn)) error {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || stopping.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				a.log.WithError(err).Warn("accept failed; retrying")
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		serve(c)
	}
}

// drain waits for running connections, then cancels and closes those left.
func (a *agentState) drain(cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(a.cfg.ShutdownTimeout):
	}
	cancel()
	a.connMu.Lock()
	n := len(a.conns)
	for c := range a.conns {
		_ = c.Close()
	}
	a.connMu.Unlock()
	a.log.WithField("connections", n).Warn("closed connections still running at shutdown")
	<-done
}
