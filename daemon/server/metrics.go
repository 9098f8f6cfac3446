// SPDX-License-Identifier: Apache-2.0

package server

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opaquevault/opaquevault/internal/version"
)

// metrics are the counters served at /metrics in the Prometheus text format (version 0.0.4),
// written by hand to keep the dependency list short.
type metrics struct {
	inFlight atomic.Int64

	mu          sync.Mutex
	requests    map[routeCode]uint64
	durations   map[string]*durationSum
	rateLimited map[string]uint64
}

type routeCode struct {
	route string
	code  int
}

type durationSum struct {
	sum   float64
	count uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[routeCode]uint64{}, durations: map[string]*durationSum{}, rateLimited: map[string]uint64{}}
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[routeCode{route, code}]++
	ds := m.durations[route]
	if ds == nil {
		ds = &durationSum{}
		m.durations[route] = ds
	}
	ds.sum += d.Seconds()
	ds.count++
}

func (m *metrics) limited(which string) {
	m.mu.Lock()
	m.rateLimited[which]++
	m.mu.Unlock()
}

func (m *metrics) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	m.write(w)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	reqs := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		reqs = append(reqs, k)
	}
	slices.SortFunc(reqs, func(a, b routeCode) int {
		if c := strings.Compare(a.route, b.route); c != 0 {
			return c
		}
		return a.code - b.code
	})
	routes := make([]string, 0, len(m.durations))
	for k := range m.durations {
		routes = append(routes, k)
	}
	slices.Sort(routes)
	limiters := make([]string, 0, len(m.rateLimited))
	for k := range m.rateLimited {
		limiters = append(limiters, k)
	}
	slices.Sort(limiters)

	var b strings.Builder
	fmt.Fprintf(&b, "# HELP ov_server_build_info Build of the running ov-server.\n# TYPE ov_server_build_info gauge\n")
	fmt.Fprintf(&b, "ov_server_build_info{version=\"%s\"} 1\n", escapeLabel(version.String()))
	fmt.Fprintf(&b, "# HELP ov_server_in_flight_requests Requests being served.\n# TYPE ov_server_in_flight_requests gauge\n")
	fmt.Fprintf(&b, "ov_server_in_flight_requests %d\n", m.inFlight.Load())
	fmt.Fprintf(&b, "# HELP ov_server_http_requests_total HTTP requests by route and status code.\n# TYPE ov_server_http_requests_total counter\n")
	for _, k := range reqs {
		fmt.Fprintf(&b, "ov_server_http_requests_total{route=\"%s\",code=\"%d\"} %d\n", escapeLabel(k.route), k.code, m.requests[k])
	}
	fmt.Fprintf(&b, "# HELP ov_server_http_request_duration_seconds Time spent serving requests, by route.\n# TYPE ov_server_http_request_duration_seconds summary\n")
	for _, r := range routes {
		ds := m.durations[r]
		fmt.Fprintf(&b, "ov_server_http_request_duration_seconds_sum{route=\"%s\"} %g\n", escapeLabel(r), ds.sum)
		fmt.Fprintf(&b, "ov_server_http_request_duration_seconds_count{route=\"%s\"} %d\n", escapeLabel(r), ds.count)
	}
	fmt.Fprintf(&b, "# HELP ov_server_rate_limited_total Requests refused by a rate limit, by limit.\n# TYPE ov_server_rate_limited_total counter\n")
	for _, l := range limiters {
		fmt.Fprintf(&b, "ov_server_rate_limited_total{limit=\"%s\"} %d\n", escapeLabel(l), m.rateLimited[l])
	}
	m.mu.Unlock()
	io.WriteString(w, b.String())
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

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
