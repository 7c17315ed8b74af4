package kube

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/policy"
)

// Domino's pod labels.
const (
	LabelExecutionID  = "dominodatalab.com/execution-id"
	LabelStartingUser = "dominodatalab.com/starting-user-id"
	LabelWorkloadType = "dominodatalab.com/irsa-workload-type"
	indexExecutionID  = "execution-id"
)

// Resolver finds a run's pod in an informer cache of the compute namespace,
// indexed by execution id: no API call per request.
type Resolver struct {
	ns       string
	informer cache.SharedIndexInformer
	log      hclog.Logger
}

var _ broker.WorkloadResolver = (*Resolver)(nil)

// NewResolver watches pods in namespace ns. Call Start before Resolve.
func NewResolver(cs kubernetes.Interface, ns string, log hclog.Logger) (*Resolver, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Minute, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	if err := inf.AddIndexers(cache.Indexers{indexExecutionID: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		if id := p.Labels[LabelExecutionID]; id != "" {
			return []string{id}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	// Keep only what resolution needs; the cache may hold thousands of pods.
	if err := inf.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
			p.Annotations = nil
			p.Spec = corev1.PodSpec{ServiceAccountName: p.Spec.ServiceAccountName}
			p.Status = corev1.PodStatus{Phase: p.Status.Phase}
		}
		return obj, nil
	}); err != nil {
		return nil, err
	}
	return &Resolver{ns: ns, informer: inf, log: log.Named("workloads")}, nil
}

// Start runs the informer until ctx ends and waits for its first sync.
func (r *Resolver) Start(ctx context.Context) error {
	go r.informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced) {
		return fmt.Errorf("pod cache of namespace %s did not sync", r.ns)
	}
	return nil
}

// Ready reports whether the cache has synced.
func (r *Resolver) Ready(context.Context) error {
	if !r.informer.HasSynced() {
		return fmt.Errorf("pod cache of namespace %s not synced", r.ns)
	}
	return nil
}

// Resolve implements broker.WorkloadResolver: the run's live pod (Pending or
// Running), its owner and its service account.
func (r *Resolver) Resolve(_ context.Context, req broker.WorkloadRequest) (broker.Workload, error) {
	objs, err := r.informer.GetIndexer().ByIndex(indexExecutionID, req.RunID)
	if err != nil {
		return broker.Workload{}, err
	}
	var pods []*corev1.Pod
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.DeletionTimestamp == nil && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning) {
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		return broker.Workload{}, &broker.Error{Kind: broker.KindNotFound, Code: "run_not_found", Message: fmt.Sprintf("no pending or running pod of run %s in namespace %s", req.RunID, r.ns)}
	}
	// Several pods (cluster workers): prefer the one of the requested workload type, then by name.
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	p := pods[0]
	for _, q := range pods {
		if req.WorkloadType != "" && q.Labels[LabelWorkloadType] == req.WorkloadType {
			p = q
			break
		}
	}
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	labels := make(map[string]string, len(p.Labels))
	for k, v := range p.Labels {
		labels[k] = v
	}
	wt := req.WorkloadType
	if wt == "" {
		wt = p.Labels[LabelWorkloadType]
	}
	return broker.Workload{
		Workload: policy.Workload{RunID: req.RunID, Type: wt, Namespace: p.Namespace, ServiceAccount: sa, Pod: p.Name, Labels: labels},
		OwnerID:  p.Labels[LabelStartingUser],
	}, nil
}
