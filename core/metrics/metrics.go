// Package metrics holds the broker's Prometheus registry: the legacy counters
// existing dashboards read, and the histograms added beside them.
package metrics

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the broker's set of collectors. Other packages register their own
// collectors on Registry (policy, trust writer, IAM client).
type Metrics struct {
	Registry *prometheus.Registry

	// Legacy counters; the names (typo included) are what existing dashboards query.
	QueryConfigMap        prometheus.Counter
	QueryOrgMembership    prometheus.Counter
	FailedOrgMembership   prometheus.Counter
	QueryPrincipal        prometheus.Counter
	FailedPrincipal       prometheus.Counter
	MappingRequests       prometheus.Counter
	FailedMappingRequests prometheus.Counter

	// HTTPDuration is request latency by route pattern, method and status code.
	HTTPDuration *prometheus.HistogramVec
	// MapDuration is the latency of the map use case by outcome.
	MapDuration *prometheus.HistogramVec
}

// New builds the collectors on a fresh registry, with the Go and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		Registry:              reg,
		QueryConfigMap:        counter("irsa_query_config_map_org_to_iamrole_mapping_total", "Reads of the org to IAM role mappings."),
		QueryOrgMembership:    counter("irsa_query_user_org_membership_total", "Lookups of a caller's organization membership."),
		FailedOrgMembership:   counter("irsa_failed_query_user_org_membership_total", "Failed lookups of a caller's organization membership."),
		QueryPrincipal:        counter("irsa_query_user_principal_total", "Lookups of a caller's principal."),
		FailedPrincipal:       counter("irsa_failed_query_user_principal_total", "Failed lookups of a caller's principal."),
		MappingRequests:       counter("irsa_mapping_requests_total", "Requests to map IAM roles to a workload's service account."),
		FailedMappingRequests: counter("irsa_failed_maping_requests_total", "Failed requests to map IAM roles to a workload's service account."),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "irsa_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		MapDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "irsa_map_duration_seconds",
			Help:    "Latency of mapping a workload, from authentication to rendered config, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.HTTPDuration, m.MapDuration)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Register registers c on reg; when an equal collector is already there
// (a second component on one registry), it returns that one instead, so
// both share it. Other registration errors are returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// MustRegister is Register for collectors whose definitions are fixed in
// code: any other error is a programming error and panics.
func MustRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, err := Register(reg, c)
	if err != nil {
		panic("metrics: " + err.Error())
	}
	return c
}
