package trust

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/prometheus/client_golang/prometheus"
)

type writerMetrics struct {
	rounds    *prometheus.CounterVec // result: written, unchanged, failed
	batch     prometheus.Histogram   // requests per round
	duration  prometheus.Histogram   // round duration
	errors    *prometheus.CounterVec // reason
	pruned    prometheus.Counter     // subjects pruned
	fill      *prometheus.GaugeVec   // role
	sizeChars *prometheus.GaugeVec   // role
	quota     *prometheus.GaugeVec   // role
	subjects  *prometheus.GaugeVec   // role
	cache     *prometheus.CounterVec // result: hit, miss, stale, removing
}

func newWriterMetrics(reg prometheus.Registerer, log hclog.Logger) *writerMetrics {
	m := &writerMetrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_trust_policy_rounds_total",
			Help: "Read-modify-write rounds on trust policies by result (written, unchanged, failed).",
		}, []string{"result"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "irsa_trust_policy_batch_requests",
			Help:    "Requests coalesced into one trust-policy round.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "irsa_trust_policy_round_duration_seconds",
			Help:    "Duration of one trust-policy round (lock, read, write).",
			Buckets: prometheus.DefBuckets,
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_trust_policy_errors_total",
			Help: "Trust-policy request failures by reason.",
		}, []string{"reason"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irsa_trust_policy_pruned_subjects_total",
			Help: "Stale subjects removed to make room under the size quota.",
		}),
		fill: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_trust_policy_fill_ratio",
			Help: "Trust-policy size over the account's AssumeRolePolicySizeQuota, per role.",
		}, []string{"role"}),
		sizeChars: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_trust_policy_size_characters",
			Help: "Trust-policy size as IAM counts it, per role.",
		}, []string{"role"}),
		quota: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_trust_policy_quota_characters",
			Help: "The account's AssumeRolePolicySizeQuota as last read, per role.",
		}, []string{"role"}),
		subjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_trust_policy_subjects",
			Help: "Subjects the role's managed statements grant, per role.",
		}, []string{"role"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_trust_policy_cache_lookups_total",
			Help: "Ensure calls answered from the last round's document (hit) or sent to a round (miss: not granted or no document; stale: older than the TTL; removing: a Remove of the role is pending).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rounds, m.batch, m.duration, m.errors, m.pruned, m.fill, m.sizeChars, m.quota, m.subjects, m.cache} {
			if err := reg.Register(c); err != nil {
				// A second writer on one registry keeps its metrics local.
				log.Warn("trust writer metric not registered", "error", err)
			}
		}
	}
	return m
}

func (m *writerMetrics) observeRound(result string, requests int, d time.Duration) {
	m.rounds.WithLabelValues(result).Inc()
	m.batch.Observe(float64(requests))
	m.duration.Observe(d.Seconds())
}

// observeSize records what a round left in the role's policy. Labels are
// role ARNs the writer was asked to edit: the mapped proxy roles, a bounded set.
func (m *writerMetrics) observeSize(role string, doc *Document, quota int) {
	size := doc.Size()
	m.sizeChars.WithLabelValues(role).Set(float64(size))
	m.subjects.WithLabelValues(role).Set(float64(len(doc.Subjects())))
	if quota > 0 {
		m.quota.WithLabelValues(role).Set(float64(quota))
		m.fill.WithLabelValues(role).Set(float64(size) / float64(quota))
	}
}

func (m *writerMetrics) countError(err error) {
	m.errors.WithLabelValues(errorReason(err)).Inc()
}

// errorReason is a low-cardinality label for err.
func errorReason(err error) string {
	var sizeErr *SizeError
	var iamErr *iam.Error
	var lockErr *lockError
	var pruneErr *pruneError
	var mismatchErr *RoleMismatchError
	switch {
	case errors.As(err, &mismatchErr):
		return "role_mismatch"
	case errors.As(err, &sizeErr):
		return "size"
	case errors.Is(err, ErrNoManagedStatement):
		return "no_managed_statement"
	case errors.Is(err, ErrMalformedDocument):
		return "malformed"
	case errors.As(err, &lockErr):
		return "lock"
	case errors.As(err, &pruneErr):
		return "prune"
	case errors.As(err, &iamErr):
		return "iam_" + iamErr.Kind.String()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

type poolMetrics struct {
	members    *prometheus.GaugeVec   // pool
	free       *prometheus.GaugeVec   // pool
	fill       *prometheus.GaugeVec   // pool
	placements *prometheus.CounterVec // pool, result
	created    *prometheus.CounterVec // pool
	deleted    *prometheus.CounterVec // pool
}

func newPoolMetrics(reg prometheus.Registerer, log hclog.Logger) *poolMetrics {
	m := &poolMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_proxy_pool_members",
			Help: "Members of a proxy-role pool (static and created), per pool.",
		}, []string{"pool"}),
		free: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_proxy_pool_free_slots",
			Help: "Subjects a proxy-role pool's members can still take before the size quota (estimated from their last rounds), per pool.",
		}, []string{"pool"}),
		fill: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irsa_proxy_pool_fill_ratio",
			Help: "A proxy-role pool's summed trust-policy size over its capacity (its members' quotas, and for an elastic pool those it may still create).",
		}, []string{"pool"}),
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_proxy_pool_placements_total",
			Help: "Subjects placed on a proxy-role pool by result: existing (already held by a member), placed, full, roles_quota, error.",
		}, []string{"pool", "result"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_proxy_pool_members_created_total",
			Help: "Members an elastic proxy-role pool created.",
		}, []string{"pool"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_proxy_pool_members_deleted_total",
			Help: "Members an elastic proxy-role pool deleted after they stayed empty.",
		}, []string{"pool"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.members, m.free, m.fill, m.placements, m.created, m.deleted} {
			if err := reg.Register(c); err != nil {
				log.Warn("proxy pool metric not registered", "error", err)
			}
		}
	}
	return m
}
