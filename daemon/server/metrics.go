// SPDX-License-Identifier: Apache-2.0

package server

import (
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opaquevault/opaquevault/internal/version"
)

// metrics are the Prometheus collectors of one Server, in a registry of its own. They are served
// by [Server.MetricsHandler], never on the API listener: they show request counts, failed logins
// and the version, which are nobody's business but the operator's.
type metrics struct {
	reg         *prometheus.Registry
	inFlight    prometheus.Gauge
	requests    *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	shed        prometheus.Counter
	conflicts   prometheus.Counter
	quota       *prometheus.CounterVec
	auditBatch  prometheus.Histogram
	auditErrors prometheus.Counter
	envCache    *prometheus.CounterVec

	feedChanges, feedFlushes      prometheus.Counter
	headHit, headMiss, headBypass prometheus.Counter
}

// dbHandles is what a store offers for connection-pool metrics (sqlitestore: writer and reader).
type dbHandles interface {
	SQLDBs() map[string]*sql.DB
}

func newMetrics(st any) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ov_server_in_flight_requests", Help: "Requests being served."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ov_server_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ov_server_http_request_duration_seconds", Help: "Time spent serving requests, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ov_server_rate_limited_total", Help: "Requests refused by a rate limit, by limit."}, []string{"limit"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ov_server_shed_total", Help: "Requests refused with 503 because the server was at its concurrency limit."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ov_server_commit_conflicts_total", Help: "Commits refused because the environment changed since the writer read it."}),
		quota: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ov_server_quota_refusals_total", Help: "Requests refused by a per-account quota, by quota."}, []string{"quota"}),
		auditBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ov_server_audit_batch_entries", Help: "Audit entries written per database transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ov_server_audit_write_errors_total", Help: "Audit batches the database refused (their entries are in the log)."}),
		envCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ov_server_env_cache_total", Help: "Environment reads answered from the in-process cache (hit) or the database (miss)."}, []string{"result"}),
	}
	m.feedChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ov_server_change_feed_notifications_total", Help: "Changes the database's change feed reported (each drops what it names from memory)."})
	m.feedFlushes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ov_server_change_feed_flushes_total", Help: "Times everything held in memory was dropped because the change feed may have missed a change (reconnect, late heartbeat)."})
	heads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ov_server_env_head_total", Help: "Environment heads answered from memory (hit), read and kept (miss), or read because the change feed is not current or absent (bypass)."}, []string{"result"})
	m.headHit, m.headMiss, m.headBypass = heads.WithLabelValues("hit"), heads.WithLabelValues("miss"), heads.WithLabelValues("bypass")
	reg.MustRegister(m.feedChanges, m.feedFlushes, heads)
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ov_server_build_info", Help: "Build of the running ov-server."}, []string{"version"})
	build.WithLabelValues(version.String()).Set(1)
	reg.MustRegister(m.inFlight, m.requests, m.durations, m.rateLimited, m.shed, m.conflicts, m.quota, m.auditBatch, m.auditErrors, m.envCache, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if h, ok := st.(dbHandles); ok {
		for name, db := range h.SQLDBs() {
			reg.MustRegister(collectors.NewDBStatsCollector(db, name))
		}
	}
	if p, ok := st.(poolStatser); ok {
		reg.MustRegister(newPoolCollector(p))
	}
	return m
}

// codeLabels avoids formatting the common status codes on every request.
var codeLabels = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

func (m *metrics) observe(route string, code int, d time.Duration) {
	c, ok := codeLabels[code]
	if !ok {
		c = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(route, c).Inc()
	m.durations.WithLabelValues(route).Observe(d.Seconds())
}

// watchFeed registers the gauge of the change feed's health.
func (m *metrics) watchFeed(current func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ov_server_change_feed_current", Help: "1 while the database's change feed is current and reads may be answered from memory; 0 otherwise (or without a feed: SQLite)."},
		func() float64 {
			if current() {
				return 1
			}
			return 0
		}))
}

func (m *metrics) limited(which string) { m.rateLimited.WithLabelValues(which).Inc() }

// MetricsHandler serves the Prometheus metrics of s. ov-server serves it only on the separate
// --metrics-listen address.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
