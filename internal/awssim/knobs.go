package awssim

import (
	"context"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// knobs holds the runtime-tunable fault and latency injection, and call counters.
// The key "" holds defaults that apply to every action without its own setting.
type knobs struct {
	mu        sync.Mutex
	latency   map[string]time.Duration
	buckets   map[string]*tokenBucket
	failP     map[string]float64
	propDelay time.Duration
	calls     map[string]int
	throttles map[string]int
	rng       *rand.Rand
}

type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

func newKnobs() *knobs {
	return &knobs{
		latency:   map[string]time.Duration{},
		buckets:   map[string]*tokenBucket{},
		failP:     map[string]float64{},
		calls:     map[string]int{},
		throttles: map[string]int{},
		rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed)),
	}
}

func (k *knobs) count(action string) {
	k.mu.Lock()
	k.calls[action]++
	k.mu.Unlock()
}

// delay sleeps for the action's latency (or the default); it returns early with the
// context's error when the client goes away.
func (k *knobs) delay(ctx context.Context, action string) error {
	k.mu.Lock()
	d, ok := k.latency[action]
	if !ok {
		d = k.latency[""]
	}
	k.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttled reports whether this call is refused: by the action's token bucket, by the
// shared ("") bucket, or by the failure probability.
func (k *knobs) throttled(action string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	refuse := false
	if b, ok := k.buckets[action]; ok && !b.take(now) {
		refuse = true
	}
	if b, ok := k.buckets[""]; ok && !refuse && !b.take(now) {
		refuse = true
	}
	p, ok := k.failP[action]
	if !ok {
		p = k.failP[""]
	}
	if !refuse && p > 0 && k.rng.Float64() < p {
		refuse = true
	}
	if refuse {
		k.throttles[action]++
	}
	return refuse
}

// SetLatency delays every call of action by d before it is handled; action "" sets the
// default for actions without their own value. d <= 0 removes the setting.
func (s *Server) SetLatency(action string, d time.Duration) {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	if d <= 0 {
		delete(s.knobs.latency, action)
		return
	}
	s.knobs.latency[action] = d
}

// SetThrottle limits action to ratePerSec with the given burst (token bucket); over the
// limit, callers get the real Throttling error (HTTP 400, "Rate exceeded"). action ""
// is one bucket shared by all actions (like an account-wide rate). rate 0 turns it off.
func (s *Server) SetThrottle(action string, ratePerSec float64, burst int) {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	if ratePerSec <= 0 {
		delete(s.knobs.buckets, action)
		return
	}
	if burst < 1 {
		burst = 1
	}
	s.knobs.buckets[action] = &tokenBucket{rate: ratePerSec, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// SetFailureProbability makes a fraction p of action's calls fail with Throttling;
// action "" is the default for actions without their own value. p <= 0 removes it.
func (s *Server) SetFailureProbability(action string, p float64) {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	if p <= 0 {
		delete(s.knobs.failP, action)
		return
	}
	s.knobs.failP[action] = min(p, 1)
}

// SetPropagationDelay makes STS (and authorization of temporary credentials) see trust
// and permission policies as they were d ago, like IAM's eventual consistency.
func (s *Server) SetPropagationDelay(d time.Duration) {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	s.knobs.propDelay = max(d, 0)
}

func (s *Server) propagationDelay() time.Duration {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	return s.knobs.propDelay
}

// Calls returns the number of requests received per action (including refused ones).
func (s *Server) Calls() map[string]int {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	out := make(map[string]int, len(s.knobs.calls))
	for k, v := range s.knobs.calls {
		out[k] = v
	}
	return out
}

// Throttled returns the number of calls refused with Throttling per action.
func (s *Server) Throttled() map[string]int {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	out := make(map[string]int, len(s.knobs.throttles))
	for k, v := range s.knobs.throttles {
		out[k] = v
	}
	return out
}

// ResetCalls zeroes the call and throttle counters.
func (s *Server) ResetCalls() {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	s.knobs.calls = map[string]int{}
	s.knobs.throttles = map[string]int{}
}

// --- propagation history ---

// historyKeep bounds how long superseded role versions are kept beyond the delay.
const (
	historyKeep   = 5 * time.Minute
	historyMaxLen = 256
)

// recordLocked appends the role's current state (nil r: deleted) to its history.
// Caller holds s.mu for writing.
func (s *Server) recordLocked(a *account, r *role, key string) {
	now := s.now()
	v := roleVersion{at: now, deleted: r == nil}
	if r != nil {
		v.name, v.arn, v.id, v.maxSession, v.trust = r.name, r.arn, r.id, r.maxSession, r.trust
		for _, n := range sortedKeys(r.inline) {
			v.inline = append(v.inline, r.inline[n].pol)
		}
		for _, arn := range r.attached {
			if p, ok := a.policies[arn]; ok {
				v.inline = append(v.inline, p.pol)
			}
		}
		if p, ok := a.policies[r.boundary]; ok {
			v.boundary = p.pol
		}
	}
	h := append(a.history[key], v)
	cutoff := now.Add(-s.propagationDelay() - historyKeep)
	drop := 0
	for drop < len(h)-1 && !h[drop+1].at.After(cutoff) {
		drop++ // superseded before the oldest instant anyone can still look at
	}
	if len(h)-drop > historyMaxLen {
		drop = len(h) - historyMaxLen
	}
	a.history[key] = append([]roleVersion(nil), h[drop:]...)
}

// roleView returns the role as STS sees it now (the propagation delay ago), or nil when
// it did not exist then.
func (s *Server) roleView(acct, name string) *roleVersion {
	at := s.now().Add(-s.propagationDelay())
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[acct]
	if !ok {
		return nil
	}
	h := a.history[strings.ToLower(name)]
	for i := len(h) - 1; i >= 0; i-- {
		if !h[i].at.After(at) {
			if h[i].deleted {
				return nil
			}
			v := h[i]
			return &v
		}
	}
	return nil
}

// --- snapshot ---

// Snapshot is a point-in-time copy of the simulator's state for assertions.
type Snapshot struct {
	Accounts  []AccountSnapshot `json:"accounts"`
	Calls     map[string]int    `json:"calls"`
	Throttled map[string]int    `json:"throttled"`
	Sessions  int               `json:"sessions"` // temporary credentials issued and not expired
}

// AccountSnapshot is one account in a Snapshot.
type AccountSnapshot struct {
	ID            string                 `json:"id"`
	Quota         int                    `json:"quota"`
	RolesQuota    int                    `json:"rolesQuota"`
	Policies      map[string]string      `json:"policies"`   // customer managed: ARN → document
	AccessKeys    []string               `json:"accessKeys"` // ids only, never secrets
	Roles         []RoleSnapshot         `json:"roles"`
	OIDCProviders []OIDCProviderSnapshot `json:"oidcProviders"`
}

// RoleSnapshot is one role in a Snapshot; documents are decoded JSON as submitted.
type RoleSnapshot struct {
	Name           string            `json:"name"`
	Path           string            `json:"path"`
	ARN            string            `json:"arn"`
	TrustPolicy    string            `json:"trustPolicy"`
	TrustSize      int               `json:"trustSize"` // as counted against the quota
	InlinePolicies map[string]string `json:"inlinePolicies"`
	// AttachedPolicies are managed policy ARNs in attach order.
	AttachedPolicies    []string          `json:"attachedPolicies,omitempty"`
	PermissionsBoundary string            `json:"permissionsBoundary,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
}

// OIDCProviderSnapshot is one OIDC provider in a Snapshot.
type OIDCProviderSnapshot struct {
	ARN       string   `json:"arn"`
	URL       string   `json:"url"`
	ClientIDs []string `json:"clientIDs"`
}

// Snapshot returns accounts (sorted by id), their roles (sorted by name), OIDC
// providers and the counters.
func (s *Server) Snapshot() Snapshot {
	snap := Snapshot{Calls: s.Calls(), Throttled: s.Throttled()}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range sortedKeys(s.accounts) {
		a := s.accounts[id]
		as := AccountSnapshot{ID: id, Quota: a.quota, RolesQuota: a.rolesQuota, Policies: map[string]string{}}
		for arn, p := range a.policies {
			as.Policies[arn] = p.doc
		}
		for _, kid := range sortedKeys(s.creds) {
			if s.creds[kid].account == id {
				as.AccessKeys = append(as.AccessKeys, kid)
			}
		}
		roles := make([]*role, 0, len(a.roles))
		for _, r := range a.roles {
			roles = append(roles, r)
		}
		sort.Slice(roles, func(i, j int) bool { return roles[i].name < roles[j].name })
		for _, r := range roles {
			rs := RoleSnapshot{Name: r.name, Path: r.path, ARN: r.arn, TrustPolicy: r.trustDoc,
				TrustSize: PolicySize(r.trustDoc), InlinePolicies: map[string]string{}}
			for n, ip := range r.inline {
				rs.InlinePolicies[n] = ip.doc
			}
			rs.AttachedPolicies = append([]string(nil), r.attached...)
			rs.PermissionsBoundary = r.boundary
			for _, t := range r.tags {
				if rs.Tags == nil {
					rs.Tags = map[string]string{}
				}
				rs.Tags[t.key] = t.value
			}
			as.Roles = append(as.Roles, rs)
		}
		for _, arn := range sortedKeys(a.providers) {
			p := a.providers[arn]
			as.OIDCProviders = append(as.OIDCProviders, OIDCProviderSnapshot{ARN: p.arn, URL: p.url, ClientIDs: append([]string(nil), p.clientIDs...)})
		}
		snap.Accounts = append(snap.Accounts, as)
	}
	for _, ss := range s.sessions {
		if now.Before(ss.expires) {
			snap.Sessions++
		}
	}
	return snap
}
