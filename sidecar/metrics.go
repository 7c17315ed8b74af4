package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the sidecar's Prometheus series (own registry, never the global one).
type metrics struct {
	reg         *prometheus.Registry
	refreshes   *prometheus.CounterVec
	errors      *prometheus.CounterVec
	duration    prometheus.Histogram
	writes      prometheus.Counter
	verifies    *prometheus.CounterVec
	verifyTime  prometheus.Histogram
	ready       prometheus.Gauge
	profiles    prometheus.Gauge
	lastSuccess prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_sidecar_refresh_total", Help: "Refreshes by result (success, failure).",
		}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_sidecar_refresh_errors_total", Help: "Failed refreshes by stage (podinfo, access_token, pod_token, broker, parse, validate, write, verify).",
		}, []string{"stage"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "irsa_sidecar_refresh_duration_seconds", Help: "Duration of a refresh, verification included.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_sidecar_config_writes_total", Help: "Times the AWS config file was replaced (content changed).",
		}),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_sidecar_verifications_total", Help: "Per-profile STS verifications by result (success, failure).",
		}, []string{"result"}),
		verifyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "irsa_sidecar_verify_duration_seconds", Help: "Time until STS accepted a profile (IAM propagation included).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60, 120},
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_sidecar_ready", Help: "1 once the config is written and verified.",
		}),
		profiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_sidecar_profiles", Help: "Profiles in the current config (src_ profiles excluded).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_sidecar_last_success_timestamp_seconds", Help: "Unix time of the last successful refresh.",
		}),
	}
	m.reg.MustRegister(m.refreshes, m.errors, m.duration, m.writes, m.verifies, m.verifyTime, m.ready, m.profiles, m.lastSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"success", "failure"} {
		m.refreshes.WithLabelValues(r)
		m.verifies.WithLabelValues(r)
	}
	return m
}
