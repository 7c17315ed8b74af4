package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
)

// TrustEditor is what clean-up needs from the trust writer (*trust.Writer).
// Subjects returns an error satisfying errors.Is(err, model.ErrRoleNotManaged)
// for a role whose trust policy has no statement the broker may edit.
type TrustEditor interface {
	Remove(ctx context.Context, roleARN string, subjects ...string) error
	Subjects(ctx context.Context, roleARN string) ([]string, error)
}

// Pods is the view of the compute namespace's pods that clean-up, pruning
// and the audit need (*kube.Resolver).
type Pods interface {
	// Namespace is the compute namespace.
	Namespace() string
	// Ready fails until the view has synced: an unsynced view would make
	// every run look ended.
	Ready(ctx context.Context) error
	// LivePodsOf lists the Pending or Running pods that run as sa.
	LivePodsOf(sa string) []model.Pod
	// OnPodGone registers fn, called when a pod ends or is deleted.
	OnPodGone(fn func(model.Pod)) error
}

// Auditor records trust changes (*kube.Events: a log line and a Kubernetes Event).
type Auditor interface {
	Record(c model.TrustChange)
}

// CleanerOptions configure NewCleaner.
type CleanerOptions struct {
	Pods  Pods
	Trust TrustEditor
	// Roles lists the proxy roles whose trust policies the broker manages
	// (ProxyRoles of the mapping store, typically).
	Roles func(ctx context.Context) ([]string, error)
	// LegacySubjects: subjects are written as "*:<ns>:<sa>".
	LegacySubjects bool
	// Interval between full reconciles while leading; 0: only when
	// leadership starts.
	Interval time.Duration
	Audit    Auditor
	Logger   hclog.Logger
	// AfterReconcile, optional, runs after each full reconcile (the
	// deletion of elastic pool members that stayed empty).
	AfterReconcile func(ctx context.Context) error
	// LivePodsNow, optional, asks the Kubernetes API server itself (not the
	// pod cache) for the live pods that run as a service account. When set,
	// a subject the cache calls ended is removed only if the API server
	// agrees: the cache of a replica that just became leader may not yet
	// hold a pod another replica mapped a moment ago
	// (docs/design/replicas.md). It is asked only for removal candidates,
	// once per service account and sweep.
	LivePodsNow func(ctx context.Context, serviceAccount string) ([]model.Pod, error)
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
	pending map[string]model.Pod // service account → last pod seen going
	notify  chan struct{}
}

// NewCleaner registers with the resolver's pod events; call before the
// resolver starts or after, either works.
func NewCleaner(o CleanerOptions) (*Cleaner, error) {
	if o.Pods == nil || o.Trust == nil || o.Roles == nil || o.Audit == nil {
		return nil, errors.New("broker: the cleaner needs Pods, Trust, Roles and Audit")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	c := &Cleaner{o: o, log: o.Logger.Named("cleanup"), pending: map[string]model.Pod{}, notify: make(chan struct{}, 1)}
	if err := o.Pods.OnPodGone(c.podGone); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cleaner) podGone(p model.Pod) {
	if !c.leading.Load() || p.Namespace != c.o.Pods.Namespace() {
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
			c.pending = map[string]model.Pod{}
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
func (c *Cleaner) removeGone(ctx context.Context, gone map[string]model.Pod) error {
	stale := map[string]model.Pod{}
	for sa, p := range gone {
		if len(c.o.Pods.LivePodsOf(sa)) == 0 {
			stale[sa] = p
		}
	}
	if len(stale) == 0 {
		return nil
	}
	_, err := c.sweep(ctx, "pod-gone", func(ps model.Subject) (model.Pod, bool) {
		p, ok := stale[ps.ServiceAccount]
		return p, ok
	})
	return err
}

// Reconcile compares every managed role's subjects of the compute
// namespace with the live pods and removes those no live pod runs as. It
// returns how many (role, subject) entries it removed.
func (c *Cleaner) Reconcile(ctx context.Context) (int, error) {
	n, err := c.sweep(ctx, "reconcile", func(ps model.Subject) (model.Pod, bool) {
		return model.Pod{Namespace: ps.Namespace, ServiceAccount: ps.ServiceAccount}, true
	})
	c.log.Debug("reconciled", "removed", n, "error", err)
	if c.o.AfterReconcile != nil && ctx.Err() == nil {
		if aerr := c.o.AfterReconcile(ctx); aerr != nil {
			c.log.Error("after reconcile", "error", aerr)
		}
	}
	return n, err
}

// sweep reads each managed role and removes the subjects of the compute
// namespace that candidate selects and that no live pod runs as (checked
// again here, after the read).
func (c *Cleaner) sweep(ctx context.Context, cause string, candidate func(model.Subject) (model.Pod, bool)) (int, error) {
	// An unsynced cache would make every run look ended.
	if err := c.o.Pods.Ready(ctx); err != nil {
		return 0, err
	}
	// Roles may answer some roles and an error (a pool it could not list):
	// the roles it did answer are swept, and the error is returned too.
	roles, err := c.o.Roles(ctx)
	if err != nil && len(roles) == 0 {
		return 0, fmt.Errorf("listing managed roles: %w", err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		removed int
		live    = &liveCheck{fn: c.o.LivePodsNow, seen: map[string]*liveAnswer{}}
	)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing managed roles (the others are swept): %w", err))
	}
	for _, role := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := c.sweepRole(ctx, cause, role, candidate, live)
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

func (c *Cleaner) sweepRole(ctx context.Context, cause, role string, candidate func(model.Subject) (model.Pod, bool), live *liveCheck) (int, error) {
	subjects, err := c.o.Trust.Subjects(ctx, role)
	if errors.Is(err, model.ErrRoleNotManaged) {
		return 0, nil // not federated with this cluster: nothing of ours
	}
	if err != nil {
		return 0, err
	}
	ns := c.o.Pods.Namespace()
	var (
		drop    []string
		liveErr error
	)
	pods := map[string]model.Pod{}
	for _, s := range subjects {
		ps, err := model.ParseSubject(s)
		if err != nil || ps.Namespace != ns {
			continue
		}
		p, ok := candidate(ps)
		if !ok || len(c.o.Pods.LivePodsOf(ps.ServiceAccount)) > 0 {
			continue
		}
		// The cache says no live pod runs as it: the API server must agree.
		if alive, err := live.alive(ctx, ps.ServiceAccount); err != nil || alive {
			if err != nil {
				liveErr = err
			}
			continue
		}
		ps.Legacy = c.o.LegacySubjects
		canon := ps.String()
		if _, dup := pods[canon]; !dup {
			drop = append(drop, canon)
			pods[canon] = p
		}
	}
	if len(drop) == 0 {
		return 0, liveErr
	}
	sort.Strings(drop)
	if err := c.o.Trust.Remove(ctx, role, drop...); err != nil {
		return 0, err
	}
	for _, s := range drop {
		c.o.Audit.Record(model.TrustChange{Added: false, Role: role, Subject: s, Cause: cause, Pod: pods[s]})
	}
	return len(drop), liveErr
}

// liveCheck asks LivePodsNow once per service account for one sweep (its
// roles are swept concurrently).
type liveCheck struct {
	fn   func(ctx context.Context, serviceAccount string) ([]model.Pod, error)
	mu   sync.Mutex
	seen map[string]*liveAnswer
}

type liveAnswer struct {
	once  sync.Once
	alive bool
	err   error
}

// alive reports whether the API server lists a live pod running as sa
// (false without LivePodsNow: the cache's word stands). On an error the
// subject is kept.
func (l *liveCheck) alive(ctx context.Context, sa string) (bool, error) {
	if l.fn == nil {
		return false, nil
	}
	l.mu.Lock()
	a, ok := l.seen[sa]
	if !ok {
		a = &liveAnswer{}
		l.seen[sa] = a
	}
	l.mu.Unlock()
	a.once.Do(func() {
		pods, err := l.fn(ctx, sa)
		if err != nil {
			a.err = fmt.Errorf("asking the API server for the live pods of service account %s (its subject is kept): %w", sa, err)
			return
		}
		a.alive = len(pods) > 0
	})
	return a.alive, a.err
}

// PoolMembers lists a pool's members, static and created (*trust.Pools).
type PoolMembers interface {
	Members(ctx context.Context, pair model.RolePair) ([]string, error)
}

// ManagedPoolRoles lists the roles clean-up sweeps, sorted and without
// duplicates: the proxy roles of every mapping whose trust policy the
// broker updates, and the members elastic pools created (listed in IAM
// under each pool's path). A pool that cannot be listed (IAM denied or
// throttled ListRoles) is swept by its static members only: the roles of
// every other pool are still returned, with the listing errors beside them.
func ManagedPoolRoles(store MappingStore, pools PoolMembers) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		roles := snap.ProxyRolesToUpdate() // every static member
		var errs []error
		for _, p := range snap.Pools() {
			if p.ProxyPool == nil || p.ProxyPool.Elastic == nil {
				continue
			}
			members, err := pools.Members(ctx, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("proxy pool %s: %w", p.PoolName(), err))
				continue
			}
			roles = append(roles, members...)
		}
		sort.Strings(roles)
		return slices.Compact(roles), errors.Join(errs...)
	}
}

// StaleSubjects returns the trust writer's prune callback: of subjects,
// those of the compute namespace that no live pod runs as. It prunes
// nothing before the pod view has synced.
func StaleSubjects(pods Pods) func(ctx context.Context, role string, subjects []string) ([]string, error) {
	return func(ctx context.Context, _ string, subjects []string) ([]string, error) {
		if err := pods.Ready(ctx); err != nil {
			return nil, err
		}
		var stale []string
		for _, s := range subjects {
			ps, err := model.ParseSubject(s)
			if err != nil || ps.Namespace != pods.Namespace() {
				continue
			}
			if len(pods.LivePodsOf(ps.ServiceAccount)) == 0 {
				stale = append(stale, s)
			}
		}
		return stale, nil
	}
}
