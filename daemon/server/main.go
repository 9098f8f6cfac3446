// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/store/storeopen"
	"github.com/opaquevault/opaquevault/internal/version"
)

// Exit codes (architecture.md).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// options are the command-line settings of ov-server.
type options struct {
	listen          string
	db              string
	tlsCert, tlsKey string
	insecure        bool
	logLevel        string
	noSignup        bool
	registration    string
	metricsListen   string
	cpuProfile      string
	quotas          Quotas
	overload        Overload
	limits          Limits
	readTimeout     time.Duration
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	version         bool
}

// usageError is a problem with the command line or the configuration: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func defaultDBPath() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd joins several StateDirectory= entries with ':'; the first is ours.
		return filepath.Join(strings.Split(d, ":")[0], "ov-server.db")
	}
	return "/var/lib/ov-server/ov-server.db"
}

func parseFlags(args []string, stderr io.Writer) (*options, *pflag.FlagSet, error) {
	o := &options{limits: DefaultLimits(), quotas: DefaultQuotas(), overload: DefaultOverload()}
	fs := pflag.NewFlagSet("ov-server", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8443", "serve on `ADDR`: host:port, or a unix socket as unix:/path (ignored when systemd passes sockets)")
	fs.StringVar(&o.db, "db", "", "the database, `DB`: a SQLite file, or a postgres:// URL (default: $STATE_DIRECTORY/ov-server.db, else /var/lib/ov-server/ov-server.db)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate chain, a PEM `FILE` (default: $CREDENTIALS_DIRECTORY/tls.crt when present); re-read on SIGHUP")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key, a PEM `FILE` (default: $CREDENTIALS_DIRECTORY/tls.key when present); re-read on SIGHUP")
	fs.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP on an address that is not loopback")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&o.registration, "registration", "", "who may create accounts, a `MODE`: open, invite (codes from ov-server invite create) or closed\n(default: open when every listener is loopback or a unix socket, else invite)")
	fs.BoolVar(&o.noSignup, "disable-registration", false, "the same as --registration closed")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics on `ADDR`, host:port or unix:/path (default: off; never on the API listener)")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to `FILE` (for benchmarks; read it with go tool pprof)")
	fs.IntVar(&o.quotas.Apps, "quota-apps", o.quotas.Apps, "most apps per account, `N` (0: no limit)")
	fs.IntVar(&o.quotas.Envs, "quota-envs", o.quotas.Envs, "most environments per account, `N` (0: no limit)")
	fs.IntVar(&o.quotas.Secrets, "quota-secrets", o.quotas.Secrets, "most secrets per account, `N`, all environments together (0: no limit)")
	fs.Int64Var(&o.quotas.Bytes, "quota-bytes", o.quotas.Bytes, "most `BYTES` of sealed secrets per account (0: no limit)")
	fs.IntVar(&o.quotas.Machines, "quota-machines", o.quotas.Machines, "most machine keys per account, `N` (0: no limit)")
	fs.IntVar(&o.quotas.Devices, "quota-devices", o.quotas.Devices, "most active devices per account, `N` (0: no limit)")
	fs.IntVar(&o.overload.MaxInFlight, "max-in-flight", o.overload.MaxInFlight, "`N` API requests served at once; more wait, then get 503 + Retry-After (0: no limit)")
	fs.IntVar(&o.overload.MaxQueued, "max-queued", o.overload.MaxQueued, "`N` API requests that may wait for a slot")
	fs.DurationVar(&o.overload.QueueWait, "queue-wait", o.overload.QueueWait, "longest wait for a slot before 503, a `DURATION` (200ms, 1s)")
	fs.Int64Var(&o.limits.MaxBodyBytes, "max-body-bytes", o.limits.MaxBodyBytes, "largest request body in `BYTES`, except commits and machine registrations")
	fs.Int64Var(&o.limits.MaxCommitBytes, "max-commit-bytes", o.limits.MaxCommitBytes, "largest commit request body in `BYTES`")
	fs.IntVar(&o.limits.MaxRecordBytes, "max-record-bytes", o.limits.MaxRecordBytes, "largest sealed secret record in `BYTES`")
	fs.IntVar(&o.limits.MaxSecrets, "max-secrets", o.limits.MaxSecrets, "most secrets in one environment, `N`")
	fs.Int64Var(&o.limits.MaxEnvBytes, "max-env-bytes", o.limits.MaxEnvBytes, "most `BYTES` of sealed records in one environment")
	fs.IntVar(&o.limits.KeepVersions, "keep-versions", 0, "keep `N` sealed versions of each secret for history and rollback, the newest always among them (0: all)")
	fs.Float64Var(&o.limits.KeyRate.PerSecond, "rate-key", o.limits.KeyRate.PerSecond, "`RATE` requests per second per device or machine key (0: no limit)")
	fs.IntVar(&o.limits.KeyRate.Burst, "burst-key", o.limits.KeyRate.Burst, "burst of `N` requests per device or machine key")
	fs.Float64Var(&o.limits.IPRate.PerSecond, "rate-ip", o.limits.IPRate.PerSecond, "`RATE` unauthenticated or failed requests per second per client address (0: no limit)")
	fs.IntVar(&o.limits.IPRate.Burst, "burst-ip", o.limits.IPRate.Burst, "burst of `N` unauthenticated or failed requests per client address")
	fs.Float64Var(&o.limits.LoginRate.PerSecond, "rate-login", o.limits.LoginRate.PerSecond, "`RATE` login attempts per second per email (0: no limit)")
	fs.IntVar(&o.limits.LoginRate.Burst, "burst-login", o.limits.LoginRate.Burst, "burst of `N` login attempts per email")
	fs.DurationVar(&o.readTimeout, "read-timeout", 2*time.Minute, "time to read a whole request, a `DURATION`")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 2*time.Minute, "time to write a whole response, a `DURATION`")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "time given to requests in flight at shutdown, a `DURATION`")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ov-server [flags]\n       ov-server COMMAND [flags]\n\n"+
			"ov-server stores ciphertext for OpaqueVault clients. It never sees key material.\n"+
			"Without a command it serves the API; SIGHUP re-reads the TLS certificate and key.\n\n"+
			"Commands (each has --help):\n"+
			"  invite create|list|revoke   manage invite codes for --registration invite\n"+
			"  backup FILE                 write a consistent copy of the SQLite database to FILE (new, 0600) while ov-server runs\n"+
			"  restore FILE                replace the SQLite database by the backup FILE; stop ov-server first\n\n"+
			"Flags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if fs.NArg() > 0 {
		return nil, fs, usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.db == "" {
		o.db = defaultDBPath()
	}
	if o.registration != "" {
		if _, err := ParseRegistration(o.registration); err != nil {
			return nil, fs, usagef("--registration: %v", err)
		}
	}
	q := o.quotas
	if q.Apps < 0 || q.Envs < 0 || q.Secrets < 0 || q.Bytes < 0 || q.Machines < 0 || q.Devices < 0 || o.overload.MaxInFlight < 0 || o.overload.MaxQueued < 0 {
		return nil, fs, usagef("quotas and --max-in-flight, --max-queued must be ≥ 0")
	}
	l := o.limits
	if l.KeepVersions < 0 {
		return nil, fs, usagef("--keep-versions must be ≥ 0 (0 keeps every version)")
	}
	if l.MaxBodyBytes < 1024 || l.MaxCommitBytes < l.MaxBodyBytes || l.MaxRecordBytes < 64 || l.MaxSecrets < 1 || l.MaxEnvBytes < int64(l.MaxRecordBytes) ||
		l.KeyRate.PerSecond < 0 || l.IPRate.PerSecond < 0 || l.LoginRate.PerSecond < 0 {
		return nil, fs, usagef("limits out of range: body ≥ 1024, commit ≥ body, record ≥ 64, secrets ≥ 1, env ≥ record, rates ≥ 0")
	}
	o.limits.MaxMachineBytes = max(o.limits.MaxBodyBytes, 1<<20)
	return o, fs, nil
}

// newLogger builds the one logger of the process: text on stderr, without timestamps under
// systemd (the journal adds its own). This is the hook point for journald-native output
// (internal/sd.NewLogger, style B.5) once that package exists.
func newLogger(w io.Writer, level logrus.Level) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	l.SetLevel(level)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: os.Getenv("INVOCATION_ID") != "", FullTimestamp: true, DisableColors: true})
	return l
}

// Main runs ov-server with args (without the program name) until ctx is done, then shuts down
// gracefully. It returns the exit code: 0 ok, 1 failure, 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "invite" {
		return inviteMain(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "backup" || args[0] == "restore") {
		return backupMain(ctx, args[0], args[1:], stdout, stderr)
	}
	o, _, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintf(stdout, "ov-server %s\n", version.String())
		return exitOK
	}
	level, err := logrus.ParseLevel(o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "ov-server: error: --log-level %q: want debug, info, warn or error\n", o.logLevel)
		return exitUsage
	}
	logger := newLogger(stderr, level)
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
			return exitFailure
		}
		defer stop()
	}
	if err := run(ctx, o, logger, stderr); err != nil {
		fmt.Fprintf(stderr, "ov-server: error: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

// listener is one socket the server serves on.
type listener struct {
	net.Listener
	shown string // as printed: http://127.0.0.1:8443, https://…, unix:/path
	tls   bool
	local bool // loopback or a unix socket: only this host can connect
}

func run(ctx context.Context, o *options, logger *logrus.Logger, stderr io.Writer) error {
	log := logrus.NewEntry(logger)
	certs, err := tlsFiles(o)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if certs != nil {
		if err := certs.load(); err != nil {
			return err
		}
		tlsCfg = &tls.Config{
			MinVersion:     tls.VersionTLS13, // crypto.md §7: TLS 1.3
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.cert.Load(), nil },
			NextProtos:     []string{"h2", "http/1.1"},
		}
	}
	lns, err := openListeners(o, tlsCfg != nil)
	if err != nil {
		return err
	}
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	db, err := storeopen.Open(ctx, o.db)
	if err != nil {
		closeAll()
		return err
	}
	defer db.Close()
	reg := Registration(o.registration)
	if reg == "" {
		reg = RegistrationOpen
		for _, l := range lns {
			if !l.local {
				reg = RegistrationInvite
			}
		}
	}
	srv, err := New(ctx, Config{Store: db, Log: log, Limits: o.limits, Registration: reg, DisableRegistration: o.noSignup,
		Quotas: o.quotas, Overload: o.overload})
	if err != nil {
		closeAll()
		return err
	}
	defer srv.Close()
	var mln *listener
	if o.metricsListen != "" {
		if mln, err = openMetricsListener(o.metricsListen, tlsCfg != nil, o.insecure); err != nil {
			closeAll()
			return err
		}
	}
	errLog := logger.WriterLevel(logrus.WarnLevel)
	defer errLog.Close()
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       o.readTimeout,
		WriteTimeout:      o.writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		TLSConfig:         tlsCfg,
		ErrorLog:          log2std(errLog),
		// Requests in flight keep their context through a graceful shutdown.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// SIGHUP is caught before anything says "listening" or READY=1: from then on systemd may send a
	// reload, and an uncaught SIGHUP would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	errc := make(chan error, len(lns)+1)
	var ms *http.Server
	if mln != nil {
		ms = &http.Server{Handler: metricsMux(srv), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg, ErrorLog: log2std(errLog)}
		go func() {
			var err error
			if mln.tls {
				err = ms.ServeTLS(mln, "", "")
			} else {
				err = ms.Serve(mln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve metrics on %s: %w", mln.shown, err)
			}
		}()
		fmt.Fprintf(stderr, "ov-server: metrics on %s/metrics\n", mln.shown)
	}
	for _, l := range lns {
		go func() {
			var err error
			if l.tls {
				err = hs.ServeTLS(l, "", "")
			} else {
				err = hs.Serve(l)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", l.shown, err)
			}
		}()
		// One line per socket, for scripts that wait for the server.
		fmt.Fprintf(stderr, "ov-server: listening on %s (db %s)\n", l.shown, db.Path())
	}
	log.WithFields(logrus.Fields{"version": version.String(), "db": db.Path(), "sockets": len(lns), "registration": string(srv.registration)}).Info("serving")
	if err := sdNotify("READY=1\nSTATUS=serving"); err != nil {
		log.WithField("error", err.Error()).Warn("notify systemd")
	}

	stopWatchdog := startWatchdog(ctx, db.Ping, log)
	defer stopWatchdog()

	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-errc:
			break wait
		case <-hup:
			_ = sdReloading()
			if certs != nil {
				if err := certs.load(); err != nil {
					log.WithField("error", err.Error()).Error("reload TLS certificate; keeping the old one")
				} else {
					log.Info("reloaded TLS certificate")
				}
			}
			sdNotify("READY=1\nSTATUS=serving")
		}
	}
	sdNotify("STOPPING=1")
	log.Info("shutting down")
	srv.StopWatches()
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.WithField("error", err.Error()).Warn("requests still in flight at the shutdown timeout; closing them")
		hs.Close()
	}
	if ms != nil {
		ms.Close()
	}
	return serveErr
}

func log2std(w io.Writer) *log.Logger { return log.New(w, "", 0) }

// startWatchdog pings systemd's watchdog at half its interval while the database answers.
func startWatchdog(ctx context.Context, ping func(context.Context) error, log *logrus.Entry) func() {
	every := sdWatchdog()
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, cancel := context.WithTimeout(ctx, every/4)
				err := ping(pctx)
				cancel()
				if err != nil {
					log.WithField("error", err.Error()).Warn("database does not answer; skipping watchdog ping")
					continue
				}
				sdNotify("WATCHDOG=1")
			}
		}
	}()
	return func() { close(done) }
}

// certReloader holds the TLS certificate, replaced on SIGHUP.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func (c *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s: %w", c.certFile, err)
	}
	c.cert.Store(&cert)
	return nil
}

// tlsFiles finds the certificate and key: flags, else tls.crt and tls.key in
// $CREDENTIALS_DIRECTORY (LoadCredential=), else none.
func tlsFiles(o *options) (*certReloader, error) {
	if o.tlsCert != "" || o.tlsKey != "" {
		if o.tlsCert == "" || o.tlsKey == "" {
			return nil, usagef("--tls-cert and --tls-key go together")
		}
		return &certReloader{certFile: o.tlsCert, keyFile: o.tlsKey}, nil
	}
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return nil, nil
	}
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_, errC := os.Stat(crt)
	_, errK := os.Stat(key)
	switch {
	case errC == nil && errK == nil:
		return &certReloader{certFile: crt, keyFile: key}, nil
	case errors.Is(errC, fs.ErrNotExist) && errors.Is(errK, fs.ErrNotExist):
		return nil, nil
	case errC == nil || errK == nil:
		return nil, usagef("$CREDENTIALS_DIRECTORY holds only one of tls.crt and tls.key")
	}
	return nil, fmt.Errorf("read credentials: %w", errors.Join(errC, errK))
}

func refusePlain(addr string) error {
	return usagef("refuse to serve plain HTTP on %s: bearer tokens would cross the network in clear; "+
		"give --tls-cert and --tls-key (or tls.crt and tls.key in $CREDENTIALS_DIRECTORY), listen on loopback or unix:/path, "+
		"or pass --insecure", addr)
}

// openListeners returns the sockets to serve on: those systemd passed, else the one --listen
// names. Plain HTTP is allowed only on loopback and unix sockets unless --insecure.
func openListeners(o *options, tlsOn bool) ([]listener, error) {
	if sd := systemdListeners(); len(sd) > 0 {
		out := make([]listener, 0, len(sd))
		for _, l := range sd {
			li, err := describe(l, tlsOn, o.insecure)
			if err != nil {
				for _, l := range sd {
					l.Close()
				}
				return nil, err
			}
			out = append(out, li)
		}
		return out, nil
	}
	if path, ok := strings.CutPrefix(o.listen, "unix:"); ok {
		l, err := listenUnix(path)
		if err != nil {
			return nil, err
		}
		return []listener{{Listener: l, shown: "unix:" + path, local: true}}, nil
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, usagef("--listen %q: want host:port or unix:/path", o.listen)
	}
	if !tlsOn && !o.insecure && !api.IsLoopbackHost(host) {
		return nil, refusePlain(o.listen)
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	li, err := describe(l, tlsOn, o.insecure)
	if err != nil {
		l.Close()
		return nil, err
	}
	return []listener{li}, nil
}

// describe decides how to serve on l (TLS on TCP when configured; plain on unix sockets) and
// applies the plain-HTTP rule to the address actually bound.
func describe(l net.Listener, tlsOn, insecure bool) (listener, error) {
	switch a := l.Addr().(type) {
	case *net.UnixAddr:
		return listener{Listener: l, shown: "unix:" + a.Name, local: true}, nil
	case *net.TCPAddr:
		if tlsOn {
			return listener{Listener: l, shown: "https://" + a.String(), tls: true, local: a.IP.IsLoopback()}, nil
		}
		if !insecure && !a.IP.IsLoopback() {
			return listener{}, refusePlain(a.String())
		}
		return listener{Listener: l, shown: "http://" + a.String(), local: a.IP.IsLoopback()}, nil
	}
	return listener{}, fmt.Errorf("serve on %s: unsupported socket type %T", l.Addr(), l.Addr())
}

// listenUnix binds a unix socket with mode 0600. A stale socket file (nobody answers) is replaced;
// a live one, or a file that is not a socket, is refused.
func listenUnix(path string) (net.Listener, error) {
	if path == "" || !filepath.IsAbs(path) {
		return nil, usagef("--listen unix:%s: want an absolute socket path", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on unix:%s: the path exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on unix:%s: another server answers there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	return l, nil
}

// openMetricsListener opens the --metrics-listen socket, under the same plain-HTTP rule as the API.
func openMetricsListener(addr string, tlsOn, insecure bool) (*listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		l, err := listenUnix(path)
		if err != nil {
			return nil, err
		}
		return &listener{Listener: l, shown: "unix:" + path, local: true}, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, usagef("--metrics-listen %q: want host:port or unix:/path", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	li, err := describe(l, tlsOn, insecure)
	if err != nil {
		l.Close()
		return nil, err
	}
	return &li, nil
}

// metricsMux serves /metrics and nothing else.
func metricsMux(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.MetricsHandler())
	return mux
}

// startCPUProfile writes a CPU profile to a new 0600 file until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
