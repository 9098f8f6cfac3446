// SPDX-License-Identifier: Apache-2.0

package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opaquevault/opaquevault/internal/store"
)

// poolStatser is a store that pools its own connections (pgstore) and reports them.
type poolStatser interface {
	PoolStats() map[string]store.PoolStats
}

// poolCollector turns a store's PoolStats into metrics at every scrape.
type poolCollector struct {
	st                        poolStatser
	max, conns, waits, waited *prometheus.Desc
}

func newPoolCollector(st poolStatser) *poolCollector {
	return &poolCollector{
		st:     st,
		max:    prometheus.NewDesc("ov_server_db_pool_max_connections", "Most connections the database pool opens.", []string{"db_name"}, nil),
		conns:  prometheus.NewDesc("ov_server_db_pool_connections", "Open database connections, by state.", []string{"db_name", "state"}, nil),
		waits:  prometheus.NewDesc("ov_server_db_pool_waits_total", "Acquisitions that waited for a free connection.", []string{"db_name"}, nil),
		waited: prometheus.NewDesc("ov_server_db_pool_wait_seconds_total", "Time spent waiting for a free connection.", []string{"db_name"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.max
	ch <- c.conns
	ch <- c.waits
	ch <- c.waited
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.st.PoolStats() {
		ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.Max), name)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.InUse), name, "in_use")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Idle), name, "idle")
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.Waits), name)
		ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.WaitTime.Seconds(), name)
	}
}
