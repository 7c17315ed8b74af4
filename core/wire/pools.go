package wire

import (
	"context"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/kube"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// Proxy-role pools (docs/design/pools.md): placement over the writer (and
// its audit), elastic growth through the IAM client under the same Lease
// locker as the writer's rounds, fill alerts as Events.

// pools builds the placement of subjects on pools. Ensure goes through the
// audited writer when there is one, so placements are logged and Evented
// like any trust change.
func (b *Broker) pools(writer *trust.Writer, client *iam.Client, g graph, locker trust.Locker) *trust.Pools {
	return trust.NewPools(trust.PoolOptions{
		Writer: writer, Ensure: g.trust, IAM: client, Locker: locker,
		Alert: b.fillAlert(g), Registerer: b.Metrics.Registry, Logger: b.log,
	})
}

// fillAlert logs and, with Kubernetes, emits a Warning Event on the mapping
// ConfigMap when a role or a pool passes 80 %; without Kubernetes, it logs.
func (b *Broker) fillAlert(g graph) trust.FillAlert {
	if ev, ok := g.audit.(*kube.Events); ok {
		ns, name := b.cfg.FieldNamespace, b.cfg.MappingConfigMap
		if ns == "" {
			ns = mapping.DefaultConfigMapNamespace
		}
		if name == "" {
			name = mapping.DefaultConfigMapName
		}
		return ev.FillAlert(ns, name)
	}
	log := b.log.Named("trust")
	return func(kind, name string, ratio float64) {
		log.Warn("trust capacity nearly used", "kind", kind, "name", name, "fill_ratio", ratio)
	}
}

// podsOf is the pod view for /v2/trust's runs and users (nil without
// Kubernetes; never a typed nil).
func podsOf(g graph) broker.Pods {
	if g.pods == nil {
		return nil
	}
	return g.pods
}

// shrinkPools deletes elastic members that stayed empty, after each
// reconcile of the clean-up leader.
func shrinkPools(store broker.MappingStore, pools *trust.Pools) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			return err
		}
		_, err = pools.Shrink(ctx, snap.Pools())
		return err
	}
}
