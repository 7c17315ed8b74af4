package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// AnnotationRole names the role a trust-lock Lease guards.
const AnnotationRole = "irsa-broker.io/role-arn"

// LeaseLockerOptions configure NewLeaseLocker.
type LeaseLockerOptions struct {
	// Namespace holds the Leases (one per proxy role).
	Namespace string
	// Identity names this replica (unique per process).
	Identity string
	// LeaseDuration is how long a holder that stopped renewing keeps the
	// lock; DefaultLeaseDuration when zero. Holders renew every third of it.
	LeaseDuration time.Duration
	// MaxRetryInterval caps the wait between attempts (50 ms when zero).
	MaxRetryInterval time.Duration
	Logger           hclog.Logger
}

// DefaultLeaseDuration is the lease duration when none is configured.
const DefaultLeaseDuration = 15 * time.Second

// LeaseLocker is a trust.Locker over coordination.k8s.io Leases: one Lease
// per proxy role, so that writes to a role's trust policy are serialized
// across broker replicas (docs/design/replicas.md). Expiry is judged by
// how long this process has seen the same Lease version, never by
// comparing clocks across machines.
type LeaseLocker struct {
	cs  kubernetes.Interface
	o   LeaseLockerOptions
	log hclog.Logger

	mu       sync.Mutex
	observed map[string]observation // lease name → version first seen when
}

type observation struct {
	rv string
	at time.Time
}

// NewLeaseLocker returns a locker; it creates its Leases on first use.
func NewLeaseLocker(cs kubernetes.Interface, o LeaseLockerOptions) *LeaseLocker {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.MaxRetryInterval <= 0 {
		o.MaxRetryInterval = 50 * time.Millisecond
	}
	return &LeaseLocker{cs: cs, o: o, log: o.Logger.Named("rolelock"), observed: map[string]observation{}}
}

// LeaseName is the name of the Lease guarding roleARN (a hash: ARNs are not
// valid object names).
func LeaseName(roleARN string) string {
	sum := sha256.Sum256([]byte(roleARN))
	return "irsa-trust-" + hex.EncodeToString(sum[:])[:20]
}

// Lock blocks until this replica holds the role's Lease or ctx ends. The
// returned unlock releases it; until then the Lease is renewed.
func (l *LeaseLocker) Lock(ctx context.Context, roleARN string) (func(), error) {
	name := LeaseName(roleARN)
	var (
		lease   *coordinationv1.Lease
		lastErr error
	)
	err := l.retry().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		got, err := l.tryAcquire(ctx, name, roleARN)
		if err != nil {
			lastErr = err
		}
		lease = got
		return err == nil && got != nil, nil
	})
	if err != nil {
		if lastErr != nil {
			return nil, fmt.Errorf("lease %s/%s: %w (last error: %v)", l.o.Namespace, name, err, lastErr)
		}
		return nil, fmt.Errorf("lease %s/%s is held by another replica: %w", l.o.Namespace, name, err)
	}
	return l.hold(name, roleARN, lease), nil
}

// retry is the wait between attempts to take a Lease: a jittered exponential
// backoff, each delay in [d/2, d] for d = 5ms, 10ms, ... capped at
// MaxRetryInterval, retried until ctx ends.
func (l *LeaseLocker) retry() wait.DelayFunc {
	return wait.Backoff{
		Duration: 5 * time.Millisecond / 2,
		Factor:   2,
		Jitter:   1, // [Duration, 2·Duration)
		Cap:      l.o.MaxRetryInterval / 2,
		Steps:    math.MaxInt32, // until ctx ends; after Cap the delay stays there
	}.DelayFunc()
}

func (l *LeaseLocker) durationSeconds() *int32 {
	s := int32((l.o.LeaseDuration + time.Second - 1) / time.Second)
	return &s
}

// tryAcquire makes one attempt: a held Lease returns (nil, nil).
func (l *LeaseLocker) tryAcquire(ctx context.Context, name, roleARN string) (*coordinationv1.Lease, error) {
	leases := l.cs.CoordinationV1().Leases(l.o.Namespace)
	now := metav1.NewMicroTime(time.Now())
	id := l.o.Identity
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		zero := int32(0)
		created, err := leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.o.Namespace,
				Labels:      map[string]string{LabelManagedBy: ManagedBy},
				Annotations: map[string]string{AnnotationRole: roleARN}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: l.durationSeconds(),
				AcquireTime: &now, RenewTime: &now, LeaseTransitions: &zero},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return created, err
	}
	if err != nil {
		return nil, err
	}
	if !l.free(cur) {
		return nil, nil
	}
	next := cur.DeepCopy()
	transitions := int32(0)
	if cur.Spec.LeaseTransitions != nil {
		transitions = *cur.Spec.LeaseTransitions
	}
	if holder(cur) != "" {
		transitions++ // taking over an expired holder
		l.log.Warn("taking over an expired role lock", "role", roleARN, "lease", name, "previous_holder", holder(cur))
	}
	next.Spec = coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: l.durationSeconds(),
		AcquireTime: &now, RenewTime: &now, LeaseTransitions: &transitions}
	updated, err := leases.Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil, nil
	}
	return updated, err
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// free: nobody holds the Lease, or its holder has not renewed it for its
// duration as measured by this process's clock.
func (l *LeaseLocker) free(cur *coordinationv1.Lease) bool {
	if holder(cur) == "" {
		return true
	}
	d := l.o.LeaseDuration
	if cur.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*cur.Spec.LeaseDurationSeconds) * time.Second
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ob, ok := l.observed[cur.Name]
	if !ok || ob.rv != cur.ResourceVersion {
		l.observed[cur.Name] = observation{rv: cur.ResourceVersion, at: now}
		return false
	}
	return now.Sub(ob.at) > d
}

// hold renews the Lease until unlock, which releases it.
func (l *LeaseLocker) hold(name, roleARN string, lease *coordinationv1.Lease) func() {
	leases := l.cs.CoordinationV1().Leases(l.o.Namespace)
	var mu sync.Mutex // guards lease
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.o.LeaseDuration / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			next := lease.DeepCopy()
			now := metav1.NewMicroTime(time.Now())
			next.Spec.RenewTime = &now
			ctx, cancel := context.WithTimeout(context.Background(), l.o.LeaseDuration/3)
			updated, err := leases.Update(ctx, next, metav1.UpdateOptions{})
			cancel()
			if err == nil {
				lease = updated
			}
			mu.Unlock()
			if err != nil {
				l.log.Error("could not renew a role lock; another replica may write this role once it expires", "role", roleARN, "lease", name, "error", err)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			mu.Lock()
			defer mu.Unlock()
			next := lease.DeepCopy()
			empty := ""
			next.Spec.HolderIdentity = &empty
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := leases.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
				// It expires by itself; a conflict means another replica took it over.
				l.log.Warn("could not release a role lock", "role", roleARN, "lease", name, "error", err)
			}
		})
	}
}
