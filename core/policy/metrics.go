package policy

import (
	"github.com/prometheus/client_golang/prometheus"

	imetrics "github.com/irsa-broker/irsa-broker/core/metrics"
)

type metrics struct {
	reloads *prometheus.CounterVec
	lastOK  prometheus.Gauge
	eval    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_policy_reload_total",
			Help: "Policy (re)loads by result (success, failure).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irsa_policy_last_reload_success",
			Help: "1 if the last policy (re)load compiled, 0 if it was refused and the previous policy keeps serving.",
		}),
		eval: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "irsa_policy_eval_duration_seconds",
			Help:    "Duration of policy evaluations by query (grants, allow).",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 8), // 10µs … 164ms
		}, []string{"query"}),
	}
	if reg != nil {
		m.reloads = imetrics.MustRegister(reg, m.reloads)
		m.lastOK = imetrics.MustRegister(reg, m.lastOK)
		m.eval = imetrics.MustRegister(reg, m.eval)
	}
	return m
}
