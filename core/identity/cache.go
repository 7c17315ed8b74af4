package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Options tune an Authenticator.
type Options struct {
	// TTL is how long a successful authentication is reused (default 30s; <0 disables caching).
	TTL time.Duration
	// NegativeTTL is how long a rejected credential is remembered (default 2s; <0 disables).
	NegativeTTL time.Duration
	// MaxEntries bounds the cache (default 10,000); when full, the least
	// recently used entry makes room.
	MaxEntries int
	Logger     hclog.Logger
	Metrics    *metrics.Metrics
	Now        func() time.Time
}

// Authenticator authenticates callers through a provider with a cache in front.
type Authenticator struct {
	p    sdk.Provider
	opts Options
	log  hclog.Logger

	// cache holds answers by credential hash (nil when caching is off). Its
	// own TTL only reclaims memory; whether an entry is fresh is decided by
	// entry.expires against opts.Now.
	cache *expirable.LRU[[32]byte, entry]
	// flights shares one provider call among concurrent misses for one
	// credential.
	flights singleflight.Group
	// waiting counts callers waiting for a provider call (tests).
	waiting atomic.Int64

	hits, misses prometheus.Counter
	results      *prometheus.CounterVec
	latency      prometheus.Histogram
}

type entry struct {
	id      sdk.Identity
	err     error // non-nil: a cached rejection (wraps sdk.ErrUnauthenticated)
	expires time.Time
}

// answer is what a shared provider call returns to each of its callers.
type answer struct {
	id  sdk.Identity
	err error
}

// New wraps p.
func New(p sdk.Provider, opts Options) *Authenticator {
	if opts.TTL == 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = 2 * time.Second
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Authenticator{p: p, opts: opts, log: opts.Logger.Named("identity")}
	if ttl := max(opts.TTL, opts.NegativeTTL); ttl > 0 {
		a.cache = expirable.NewLRU[[32]byte, entry](opts.MaxEntries, nil, ttl)
	}
	a.hits = prometheus.NewCounter(prometheus.CounterOpts{Name: "irsa_identity_cache_hits_total", Help: "Authentications answered from the identity cache."})
	a.misses = prometheus.NewCounter(prometheus.CounterOpts{Name: "irsa_identity_cache_misses_total", Help: "Authentications sent to the identity provider."})
	a.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "irsa_identity_authentications_total",
		Help: "Authentications by result (ok, unauthenticated, unavailable) and source (cache, provider).",
	}, []string{"result", "source"})
	a.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "irsa_identity_provider_duration_seconds",
		Help:    "Latency of identity provider calls (cache misses).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	if opts.Metrics != nil {
		reg := opts.Metrics.Registry
		a.hits, a.misses = metrics.MustRegister(reg, a.hits), metrics.MustRegister(reg, a.misses)
		a.results, a.latency = metrics.MustRegister(reg, a.results), metrics.MustRegister(reg, a.latency)
	}
	return a
}

func cacheKey(c sdk.Credentials) [32]byte {
	h := sha256.New()
	h.Write([]byte(c.Header))
	h.Write([]byte{0})
	h.Write([]byte(c.Token))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// Authenticate returns the caller's identity. Errors wrap sdk.ErrUnauthenticated
// or sdk.ErrUnavailable; they never contain the credential. Concurrent misses
// for one credential share a single provider call; each caller waits for it
// no longer than its own ctx.
func (a *Authenticator) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if c.Token == "" {
		a.results.WithLabelValues("unauthenticated", "cache").Inc()
		return sdk.Identity{}, fmt.Errorf("%w: no credentials: send Authorization: Bearer <token> or X-Domino-Api-Key", sdk.ErrUnauthenticated)
	}
	key := cacheKey(c)
	if e, ok := a.lookup(key); ok {
		a.hits.Inc()
		a.results.WithLabelValues(result(e.err), "cache").Inc()
		return e.id, e.err
	}
	var asked bool // set by the one caller whose function runs
	ch := a.flights.DoChan(string(key[:]), func() (any, error) {
		// An answer cached since this caller's lookup is served as is.
		if e, ok := a.lookup(key); ok {
			return answer{e.id, e.err}, nil
		}
		asked = true
		id, err := a.miss(ctx, key, c)
		return answer{id, err}, nil
	})
	a.waiting.Add(1)
	defer a.waiting.Add(-1)
	select {
	case r := <-ch:
		ans := r.Val.(answer)
		if asked {
			a.results.WithLabelValues(result(ans.err), "provider").Inc()
		} else {
			a.hits.Inc()
			a.results.WithLabelValues(result(ans.err), "cache").Inc()
		}
		return ans.id, ans.err
	case <-ctx.Done():
		return sdk.Identity{}, fmt.Errorf("%w: waiting for the identity provider: %w", sdk.ErrUnavailable, ctx.Err())
	}
}

// lookup returns the fresh cached answer for key, if any.
func (a *Authenticator) lookup(key [32]byte) (entry, bool) {
	if a.cache == nil {
		return entry{}, false
	}
	e, ok := a.cache.Get(key)
	if !ok {
		return entry{}, false
	}
	if !a.opts.Now().Before(e.expires) {
		a.cache.Remove(key)
		return entry{}, false
	}
	return e, true
}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, sdk.ErrUnauthenticated):
		return "unauthenticated"
	}
	return "unavailable"
}

// miss asks the provider and caches its answer: identities for TTL (or until
// they expire, if sooner), rejections for NegativeTTL, outages not at all.
func (a *Authenticator) miss(ctx context.Context, key [32]byte, c sdk.Credentials) (sdk.Identity, error) {
	a.misses.Inc()
	m := a.opts.Metrics
	if m != nil {
		m.QueryPrincipal.Inc()
		m.QueryOrgMembership.Inc()
	}
	start := time.Now()
	id, err := a.p.Authenticate(ctx, c)
	a.latency.Observe(time.Since(start).Seconds())
	now := a.opts.Now()
	if err == nil && !id.Expiry.IsZero() && !now.Before(id.Expiry) {
		err = fmt.Errorf("%w: the credential expired at %s", sdk.ErrUnauthenticated, id.Expiry.UTC().Format(time.RFC3339))
	}
	switch {
	case err == nil:
		expires := now.Add(a.opts.TTL)
		if !id.Expiry.IsZero() && id.Expiry.Before(expires) {
			expires = id.Expiry
		}
		a.store(key, entry{id: id, expires: expires}, a.opts.TTL)
		return id, nil
	case errors.Is(err, sdk.ErrUnauthenticated):
		if m != nil {
			m.FailedPrincipal.Inc()
		}
		a.store(key, entry{err: err, expires: now.Add(a.opts.NegativeTTL)}, a.opts.NegativeTTL)
		return sdk.Identity{}, err
	default:
		if m != nil {
			m.FailedPrincipal.Inc()
			m.FailedOrgMembership.Inc()
		}
		a.log.Warn("identity provider failed", "error", err)
		if !errors.Is(err, sdk.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", sdk.ErrUnavailable, err)
		}
		return sdk.Identity{}, err
	}
}

func (a *Authenticator) store(key [32]byte, e entry, ttl time.Duration) {
	if ttl < 0 || a.cache == nil {
		return
	}
	a.cache.Add(key, e)
}

// Healthy reports whether the provider answers.
func (a *Authenticator) Healthy(ctx context.Context) error {
	if _, err := a.p.Info(ctx); err != nil {
		return fmt.Errorf("%w: %v", sdk.ErrUnavailable, err)
	}
	return nil
}
