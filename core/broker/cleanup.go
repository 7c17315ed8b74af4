package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// TrustEditor is what clean-up needs from the trust writer (*trust.Writer).
type TrustEditor interface {
	Remove(ctx context.Context, roleARN string, subjects ...string) error
	Subjects(ctx context.Context, roleARN string) ([]string, error)
}

// CleanerOptions configure NewCleaner.
type CleanerOptions struct {
	Resolver *Resolver
	Trust    TrustEditor
	// Roles lists the proxy roles whose trust policies the broker manages
	// (ProxyRoles of the mapping store, typically).
	Roles func(ctx context.Context) ([]string, error)
	// Subject renders the subject of a service account in the form written.
	Subject func(ns, sa string) string
	// Interval between full reconciles while leading; 0: only when
	// leadership starts.
	Interval time.Duration
	Events   *Events
	Logger   hclog.Logger
}

// Cleaner takes subjects out of proxy-role trust policies once no live pod
// runs as their service account: at once when a pod goes (watch), and in a
// periodic full reconcile that repairs drift. Only subjects of the compute
// namespace are touched. Run it only on the leader.
type Cleaner struct {
	o       CleanerOptions
	log     hclog.Logger
	leading atomic.Bool

	mu      sync.Mutex
	pending map[string]PodInfo // service account → last pod seen going
	notify  chan struct{}
}

// NewCleaner registers with the resolver's pod events; call before the
// resolver starts or after, either works.
func NewCleaner(o CleanerOptions) (*Cleaner, error) {
	if o.Resolver == nil || o.Trust == nil || o.Roles == nil {
		return nil, errors.New("kube: the cleaner needs Resolver, Trust and Roles")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Subject == nil {
		o.Subject = func(ns, sa string) string { return trust.Subject(ns, sa, false) }
	}
	if o.Events == nil {
		o.Events, _ = NewEvents(nil, o.Logger)
	}
	c := &Cleaner{o: o, log: o.Logger.Named("cleanup"), pending: map[string]PodInfo{}, notify: make(chan struct{}, 1)}
	if err := o.Resolver.OnPodGone(c.podGone); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cleaner) podGone(p PodInfo) {
	if !c.leading.Load() || p.Namespace != c.o.Resolver.Namespace() {
		return // a new leader starts with a full reconcile
	}
	c.mu.Lock()
	c.pending[p.ServiceAccount] = p
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Run cleans up until ctx ends (leadership lost): a full reconcile first,
// then pod departures as they come and a reconcile every Interval.
func (c *Cleaner) Run(ctx context.Context) {
	c.leading.Store(true)
	defer c.leading.Store(false)
	c.log.Info("clean-up started (leader)")
	if _, err := c.Reconcile(ctx); err != nil && ctx.Err() == nil {
		c.log.Error("reconcile failed", "error", err)
	}
	var tick <-chan time.Time
	if c.o.Interval > 0 {
		t := time.NewTicker(c.o.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			c.log.Info("clean-up stopped")
			return
		case <-c.notify:
			c.mu.Lock()
			gone := c.pending
			c.pending = map[string]PodInfo{}
			c.mu.Unlock()
			if err := c.removeGone(ctx, gone); err != nil && ctx.Err() == nil {
				c.log.Error("removing subjects of ended runs failed; the next reconcile retries", "error", err)
			}
		case <-tick:
			if _, err := c.Reconcile(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("reconcile failed", "error", err)
			}
		}
	}
}

// removeGone takes out the subjects of service accounts that no live pod
// runs as any more, from every managed role that holds them.
func (c *Cleaner) removeGone(ctx context.Context, gone map[string]PodInfo) error {
	stale := map[string]PodInfo{}
	for sa, p := range gone {
		if len(c.o.Resolver.LivePodsOf(sa)) == 0 {
			stale[sa] = p
		}
	}
	if len(stale) == 0 {
		return nil
	}
	_, err := c.sweep(ctx, "pod-gone", func(ps trust.ParsedSubject) (PodInfo, bool) {
		p, ok := stale[ps.ServiceAccount]
		return p, ok
	})
	return err
}

// Reconcile compares every managed role's subjects of the compute
// namespace with the live pods and removes those no live pod runs as. It
// returns how many (role, subject) entries it removed.
func (c *Cleaner) Reconcile(ctx context.Context) (int, error) {
	n, err := c.sweep(ctx, "reconcile", func(ps trust.ParsedSubject) (PodInfo, bool) {
		return PodInfo{Namespace: ps.Namespace, ServiceAccount: ps.ServiceAccount}, true
	})
	c.log.Debug("reconciled", "removed", n, "error", err)
	return n, err
}

// sweep reads each managed role and removes the subjects of the compute
// namespace that candidate selects and that no live pod runs as (checked
// again here, after the read).
func (c *Cleaner) sweep(ctx context.Context, cause string, candidate func(trust.ParsedSubject) (PodInfo, bool)) (int, error) {
	// An unsynced cache would make every run look ended.
	if err := c.o.Resolver.Ready(ctx); err != nil {
		return 0, err
	}
	roles, err := c.o.Roles(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing managed roles: %w", err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		removed int
	)
	for _, role := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := c.sweepRole(ctx, cause, role, candidate)
			mu.Lock()
			defer mu.Unlock()
			removed += n
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return removed, errors.Join(errs...)
}

func (c *Cleaner) sweepRole(ctx context.Context, cause, role string, candidate func(trust.ParsedSubject) (PodInfo, bool)) (int, error) {
	subjects, err := c.o.Trust.Subjects(ctx, role)
	if errors.Is(err, trust.ErrNoManagedStatement) {
		return 0, nil // not federated with this cluster: nothing of ours
	}
	if err != nil {
		return 0, err
	}
	ns := c.o.Resolver.Namespace()
	var drop []string
	pods := map[string]PodInfo{}
	for _, s := range subjects {
		ps, err := trust.ParseSubject(s)
		if err != nil || ps.Namespace != ns {
			continue
		}
		p, ok := candidate(ps)
		if !ok || len(c.o.Resolver.LivePodsOf(ps.ServiceAccount)) > 0 {
			continue
		}
		canon := c.o.Subject(ps.Namespace, ps.ServiceAccount)
		if _, dup := pods[canon]; !dup {
			drop = append(drop, canon)
			pods[canon] = p
		}
	}
	if len(drop) == 0 {
		return 0, nil
	}
	sort.Strings(drop)
	if err := c.o.Trust.Remove(ctx, role, drop...); err != nil {
		return 0, err
	}
	for _, s := range drop {
		c.o.Events.Record(TrustChange{Added: false, Role: role, Subject: s, Cause: cause, Pod: pods[s]})
	}
	return len(drop), nil
}

// ProxyRoles lists the proxy roles of every mapping whose trust policy the
// broker updates, sorted and without duplicates.
func ProxyRoles(store mapping.Store) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var out []string
		for _, m := range snap.Mappings {
			for _, p := range m.Pairs {
				if p.UpdateTrustPolicy && p.ProxyIAMRoleARN != "" && !seen[p.ProxyIAMRoleARN] {
					seen[p.ProxyIAMRoleARN] = true
					out = append(out, p.ProxyIAMRoleARN)
				}
			}
		}
		sort.Strings(out)
		return out, nil
	}
}

// Prune is a trust.PruneFunc: of subjects, those of the compute namespace
// that no live pod runs as. It prunes nothing before the cache has synced.
func (r *Resolver) Prune(ctx context.Context, _ string, subjects []string) ([]string, error) {
	if err := r.Ready(ctx); err != nil {
		return nil, err
	}
	var stale []string
	for _, s := range subjects {
		ps, err := trust.ParseSubject(s)
		if err != nil || ps.Namespace != r.o.Namespace {
			continue
		}
		if len(r.LivePodsOf(ps.ServiceAccount)) == 0 {
			stale = append(stale, s)
		}
	}
	return stale, nil
}

var _ trust.PruneFunc = (*Resolver)(nil).Prune
