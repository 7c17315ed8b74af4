package kube

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderOptions configure RunLeader.
type LeaderOptions struct {
	Namespace, Name string // the Lease
	Identity        string
	// LeaseDuration (default 15 s); renewals give up after two thirds of
	// it and retry every eighth.
	LeaseDuration time.Duration
	Logger        hclog.Logger
}

// RunLeader takes part in leader election on a coordination.k8s.io Lease
// until ctx ends, calling lead with a context that ends when leadership is
// lost. It stands again after each loss.
func RunLeader(ctx context.Context, cs kubernetes.Interface, o LeaderOptions, lead func(ctx context.Context)) error {
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	log := o.Logger.Named("leader")
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.Namespace, o.Name, nil, cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: o.Identity})
	if err != nil {
		return fmt.Errorf("kube: leader lock: %w", err)
	}
	cfg := leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.LeaseDuration * 2 / 3,
		RetryPeriod:     o.LeaseDuration / 8,
		ReleaseOnCancel: true,
		Name:            o.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info("became leader", "identity", o.Identity, "lease", o.Namespace+"/"+o.Name)
				lead(ctx)
			},
			OnStoppedLeading: func() { log.Info("stopped leading", "identity", o.Identity) },
			OnNewLeader: func(id string) {
				if id != o.Identity {
					log.Debug("leader is another replica", "leader", id)
				}
			},
		},
	}
	le, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		return fmt.Errorf("kube: leader election: %w", err)
	}
	for ctx.Err() == nil {
		le.Run(ctx)
	}
	return nil
}
