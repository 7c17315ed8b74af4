package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
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

// Member is one identity provider of an Authenticator's ordered list.
type Member struct {
	// Name names the provider in identities (sdk.Identity.Provider, which
	// policies see as input.identity.provider), metrics and logs. It matches
	// NamePattern and is unique in the list.
	Name     string
	Provider sdk.Provider
	// Headers, when not empty, are the only credential headers offered to
	// this provider (sdk.HeaderAuthorization, sdk.HeaderDominoAPIKey); a
	// credential in another header passes it by without asking. Empty, in a
	// list of more than one, is logged as a warning by NewChain: such a
	// provider is offered the other providers' credentials.
	Headers []string
}

// NamePattern is the grammar of provider names: short, label-safe, so that
// metrics labelled with them stay bounded and readable.
var NamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$`)

// DefaultName names the one provider of New.
const DefaultName = "default"

// CheckNames checks the names of an ordered list of providers: each
// matches NamePattern, none is used twice.
func CheckNames(names []string) error {
	seen := map[string]bool{}
	for i, n := range names {
		if !NamePattern.MatchString(n) || n == noProvider {
			return fmt.Errorf("%w: identity provider %d: name %q: want lower-case letters, digits, - and _ (at most 32; not %q)",
				sdk.ErrInvalidConfig, i+1, n, noProvider)
		}
		if seen[n] {
			return fmt.Errorf("%w: identity provider name %q is used twice", sdk.ErrInvalidConfig, n)
		}
		seen[n] = true
	}
	return nil
}

func (m Member) offered(header string) bool {
	return len(m.Headers) == 0 || slices.ContainsFunc(m.Headers, func(h string) bool { return strings.EqualFold(h, header) })
}

// Authenticator authenticates callers through an ordered list of providers
// with a cache in front. A credential is offered to the providers in order;
// the first that recognises it decides: an identity, or a rejection of its
// own (an expired token it issued). sdk.ErrUnauthenticated passes the
// credential to the next provider; any other error is an outage of that
// provider and is the answer (sdk.ErrUnavailable), never a fall-through, so
// that an outage cannot change who a caller is.
type Authenticator struct {
	members []Member
	opts    Options
	log     hclog.Logger

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
	results      *prometheus.CounterVec   // result, source, provider
	latency      *prometheus.HistogramVec // provider
}

type entry struct {
	id       sdk.Identity
	err      error // non-nil: a cached rejection (wraps sdk.ErrUnauthenticated)
	provider string
	expires  time.Time
}

// answer is what a shared provider call returns to each of its callers:
// the identity or error, and the provider that decided (noProvider: none).
type answer struct {
	id       sdk.Identity
	err      error
	provider string
}

// New wraps p, the one provider, named DefaultName.
func New(p sdk.Provider, opts Options) *Authenticator {
	a, err := NewChain([]Member{{Name: DefaultName, Provider: p}}, opts)
	if err != nil {
		panic(err) // unreachable: one member with a valid name
	}
	return a
}

// noProvider is the provider label of answers no provider gave: a
// credential every provider rejected or none was offered.
const noProvider = "none"

// NewChain wraps the ordered list of providers ms.
func NewChain(ms []Member, opts Options) (*Authenticator, error) {
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: no identity provider", sdk.ErrInvalidConfig)
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	if err := CheckNames(names); err != nil {
		return nil, err
	}
	members := make([]Member, len(ms))
	for i, m := range ms {
		if m.Provider == nil {
			return nil, fmt.Errorf("%w: identity provider %s: no provider", sdk.ErrInvalidConfig, m.Name)
		}
		members[i] = Member{Name: m.Name, Provider: m.Provider}
		for _, h := range m.Headers {
			c := http.CanonicalHeaderKey(h)
			if c != sdk.HeaderAuthorization && c != sdk.HeaderDominoAPIKey {
				return nil, fmt.Errorf("%w: identity provider %s: headers: %q is not %s or %s",
					sdk.ErrInvalidConfig, m.Name, h, sdk.HeaderAuthorization, sdk.HeaderDominoAPIKey)
			}
			members[i].Headers = append(members[i].Headers, c)
		}
	}
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
	a := &Authenticator{members: members, opts: opts, log: opts.Logger.Named("identity")}
	if len(members) > 1 {
		for _, m := range members {
			if len(m.Headers) == 0 {
				a.log.Warn("identity provider without headers: it is offered every credential that reaches it, also those meant for the other providers (a Domino API key can reach a third-party plugin, a CI token Domino); give it the headers it decides (docs/plugins.md)",
					"provider", m.Name, "providers", names)
			}
		}
	}
	if ttl := max(opts.TTL, opts.NegativeTTL); ttl > 0 {
		a.cache = expirable.NewLRU[[32]byte, entry](opts.MaxEntries, nil, ttl)
	}
	a.hits = prometheus.NewCounter(prometheus.CounterOpts{Name: "irsa_identity_cache_hits_total", Help: "Authentications answered from the identity cache."})
	a.misses = prometheus.NewCounter(prometheus.CounterOpts{Name: "irsa_identity_cache_misses_total", Help: "Authentications sent to the identity provider."})
	a.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "irsa_identity_authentications_total",
		Help: "Authentications by result (ok, unauthenticated, unavailable), source (cache, provider) and provider (the one that decided; none: every provider passed).",
	}, []string{"result", "source", "provider"})
	a.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "irsa_identity_provider_duration_seconds",
		Help:    "Latency of identity provider calls (cache misses), by provider.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"provider"})
	if opts.Metrics != nil {
		reg := opts.Metrics.Registry
		a.hits, a.misses = metrics.MustRegister(reg, a.hits), metrics.MustRegister(reg, a.misses)
		a.results, a.latency = metrics.MustRegister(reg, a.results), metrics.MustRegister(reg, a.latency)
	}
	return a, nil
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
		a.results.WithLabelValues("unauthenticated", "cache", noProvider).Inc()
		return sdk.Identity{}, fmt.Errorf("%w: no credentials: send Authorization: Bearer <token> or X-Domino-Api-Key", sdk.ErrUnauthenticated)
	}
	key := cacheKey(c)
	if e, ok := a.lookup(key); ok {
		a.hits.Inc()
		a.results.WithLabelValues(result(e.err), "cache", e.provider).Inc()
		return e.id, e.err
	}
	var asked bool // set by the one caller whose function runs
	ch := a.flights.DoChan(string(key[:]), func() (any, error) {
		// An answer cached since this caller's lookup is served as is.
		if e, ok := a.lookup(key); ok {
			return answer{e.id, e.err, e.provider}, nil
		}
		asked = true
		return a.miss(ctx, key, c), nil
	})
	a.waiting.Add(1)
	defer a.waiting.Add(-1)
	select {
	case r := <-ch:
		ans := r.Val.(answer)
		if asked {
			a.results.WithLabelValues(result(ans.err), "provider", ans.provider).Inc()
		} else {
			a.hits.Inc()
			a.results.WithLabelValues(result(ans.err), "cache", ans.provider).Inc()
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

// miss asks the providers and caches the answer: identities for TTL (or
// until they expire, if sooner), rejections for NegativeTTL, outages not at
// all.
func (a *Authenticator) miss(ctx context.Context, key [32]byte, c sdk.Credentials) answer {
	a.misses.Inc()
	m := a.opts.Metrics
	if m != nil {
		m.QueryPrincipal.Inc()
		m.QueryOrgMembership.Inc()
	}
	ans := a.ask(ctx, c)
	now := a.opts.Now()
	id, err := ans.id, ans.err
	if err == nil && !id.Expiry.IsZero() && !now.Before(id.Expiry) {
		err = fmt.Errorf("%w: the credential expired at %s", sdk.ErrUnauthenticated, id.Expiry.UTC().Format(time.RFC3339))
		ans = answer{err: err, provider: ans.provider}
	}
	switch {
	case err == nil:
		expires := now.Add(a.opts.TTL)
		if !id.Expiry.IsZero() && id.Expiry.Before(expires) {
			expires = id.Expiry
		}
		a.store(key, entry{id: id, provider: ans.provider, expires: expires}, a.opts.TTL)
	case errors.Is(err, sdk.ErrUnauthenticated):
		if m != nil {
			m.FailedPrincipal.Inc()
		}
		a.store(key, entry{err: err, provider: ans.provider, expires: now.Add(a.opts.NegativeTTL)}, a.opts.NegativeTTL)
	default:
		if m != nil {
			m.FailedPrincipal.Inc()
			m.FailedOrgMembership.Inc()
		}
		a.log.Warn("identity provider failed", "provider", ans.provider, "error", err)
	}
	return ans
}

// ask offers c to the providers in order (see Authenticator).
func (a *Authenticator) ask(ctx context.Context, c sdk.Credentials) answer {
	var rejected []string
	var last error
	for _, mem := range a.members {
		if !mem.offered(c.Header) {
			continue
		}
		start := time.Now()
		id, err := mem.Provider.Authenticate(ctx, c)
		a.latency.WithLabelValues(mem.Name).Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			id.Provider = mem.Name
			return answer{id: id, provider: mem.Name}
		case errors.Is(err, sdk.ErrUnauthenticated):
			rejected, last = append(rejected, mem.Name), err
			continue
		case !errors.Is(err, sdk.ErrUnavailable):
			err = fmt.Errorf("%w: %w", sdk.ErrUnavailable, err)
		}
		if len(a.members) > 1 {
			err = fmt.Errorf("identity provider %s: %w", mem.Name, err)
		}
		return answer{err: err, provider: mem.Name}
	}
	switch {
	case len(rejected) == 0:
		return answer{err: fmt.Errorf("%w: no identity provider takes credentials in %s", sdk.ErrUnauthenticated, c.Header), provider: noProvider}
	case len(a.members) == 1:
		return answer{err: last, provider: noProvider} // the one provider's own words, as before lists
	}
	return answer{err: fmt.Errorf("%w: not recognised by identity providers %s (last: %w)", sdk.ErrUnauthenticated, strings.Join(rejected, ", "), last), provider: noProvider}
}

func (a *Authenticator) store(key [32]byte, e entry, ttl time.Duration) {
	if ttl < 0 || a.cache == nil {
		return
	}
	a.cache.Add(key, e)
}

// Healthy reports whether the providers answer. With several, it is an
// error only when none does: a provider that is down fails its own
// credentials (503) while the others keep serving, so the replica stays
// ready; irsa_identity_plugin_up{provider} and the log name the one down.
func (a *Authenticator) Healthy(ctx context.Context) error {
	var errs []error
	for _, m := range a.members {
		if _, err := m.Provider.Info(ctx); err != nil {
			if len(a.members) > 1 {
				err = fmt.Errorf("identity provider %s: %w", m.Name, err)
			}
			errs = append(errs, err)
		}
	}
	if len(errs) == len(a.members) {
		return fmt.Errorf("%w: %v", sdk.ErrUnavailable, errors.Join(errs...))
	}
	return nil
}
