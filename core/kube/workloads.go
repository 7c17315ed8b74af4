package kube

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
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

	indexExecutionID    = "execution-id"
	indexServiceAccount = "service-account"
)

// ResolverOptions configure NewResolver.
type ResolverOptions struct {
	// Namespace is the compute namespace whose pods are runs.
	Namespace string
	// PodTokens verifies the pod token a sidecar presents
	// (X-Irsa-Pod-Token); nil ignores such tokens.
	PodTokens PodTokenReviewer
	// RequirePodToken refuses requests without a pod token (needs PodTokens).
	RequirePodToken bool
	// PerUserServiceAccounts makes the subject the caller's own service
	// account (UserServiceAccountName), which the run's pod must run as.
	PerUserServiceAccounts bool
	Logger                 hclog.Logger
}

// Resolver finds a run's pod in an informer cache of the compute namespace,
// indexed by execution id: no API call per request (except a TokenReview
// when a pod token is presented).
type Resolver struct {
	o        ResolverOptions
	informer cache.SharedIndexInformer
	log      hclog.Logger
}

var _ broker.WorkloadResolver = (*Resolver)(nil)

// PodInfo is what the broker keeps of a pod.
type PodInfo struct {
	Namespace, Name string
	UID             types.UID
	RunID, UserID   string
	ServiceAccount  string
}

// NewResolver watches pods in o.Namespace. Call Start before Resolve.
func NewResolver(cs kubernetes.Interface, o ResolverOptions) (*Resolver, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Namespace == "" {
		return nil, fmt.Errorf("kube: the resolver needs a namespace")
	}
	if o.RequirePodToken && o.PodTokens == nil {
		return nil, fmt.Errorf("kube: RequirePodToken needs a pod-token reviewer")
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Minute, informers.WithNamespace(o.Namespace))
	inf := f.Core().V1().Pods().Informer()
	if err := inf.AddIndexers(cache.Indexers{
		indexExecutionID: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Labels[LabelExecutionID] != "" {
				return []string{p.Labels[LabelExecutionID]}, nil
			}
			return nil, nil
		},
		indexServiceAccount: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				return []string{serviceAccountOf(p)}, nil
			}
			return nil, nil
		},
	}); err != nil {
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
	return &Resolver{o: o, informer: inf, log: o.Logger.Named("workloads")}, nil
}

// Start runs the informer until ctx ends and waits for its first sync.
func (r *Resolver) Start(ctx context.Context) error {
	go r.informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced) {
		return fmt.Errorf("pod cache of namespace %s did not sync", r.o.Namespace)
	}
	return nil
}

// Ready reports whether the cache has synced.
func (r *Resolver) Ready(context.Context) error {
	if !r.informer.HasSynced() {
		return fmt.Errorf("pod cache of namespace %s not synced", r.o.Namespace)
	}
	return nil
}

// Namespace is the compute namespace.
func (r *Resolver) Namespace() string { return r.o.Namespace }

func serviceAccountOf(p *corev1.Pod) string {
	if p.Spec.ServiceAccountName == "" {
		return "default"
	}
	return p.Spec.ServiceAccountName
}

// live: the pod counts as a running workload.
func live(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning)
}

func info(p *corev1.Pod) PodInfo {
	return PodInfo{Namespace: p.Namespace, Name: p.Name, UID: p.UID, RunID: p.Labels[LabelExecutionID],
		UserID: p.Labels[LabelStartingUser], ServiceAccount: serviceAccountOf(p)}
}

// LivePodsOf returns the live pods running as service account sa, from the cache.
func (r *Resolver) LivePodsOf(sa string) []PodInfo {
	objs, _ := r.informer.GetIndexer().ByIndex(indexServiceAccount, sa)
	var out []PodInfo
	for _, o := range objs {
		if p := o.(*corev1.Pod); live(p) {
			out = append(out, info(p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// OnPodGone calls fn (from the informer's goroutine; it must not block) for
// every pod that stops being a live workload: deleted, or Succeeded/Failed,
// or marked for deletion.
func (r *Resolver) OnPodGone(fn func(PodInfo)) error {
	_, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 && live(o) && !live(n) {
				fn(info(n))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				fn(info(p))
			}
		},
	})
	return err
}

// Resolve implements broker.WorkloadResolver: the run's live pod (Pending or
// Running), its owner and its service account. With a pod token, the token
// must belong to one of the run's live pods, and that pod is the workload.
func (r *Resolver) Resolve(ctx context.Context, req broker.WorkloadRequest) (broker.Workload, error) {
	objs, err := r.informer.GetIndexer().ByIndex(indexExecutionID, req.RunID)
	if err != nil {
		return broker.Workload{}, err
	}
	var pods []*corev1.Pod
	for _, o := range objs {
		if p := o.(*corev1.Pod); live(p) {
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		return broker.Workload{}, &broker.Error{Kind: broker.KindNotFound, Code: "run_not_found", Message: fmt.Sprintf("no pending or running pod of run %s in namespace %s", req.RunID, r.o.Namespace)}
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
	switch {
	case req.PodToken != "" && r.o.PodTokens != nil:
		if p, err = r.bind(ctx, req.RunID, req.PodToken, pods); err != nil {
			return broker.Workload{}, err
		}
	case r.o.RequirePodToken:
		return broker.Workload{}, &broker.Error{Kind: broker.KindForbidden, Code: "pod_token_required",
			Message: "this broker requires the pod's own service-account token (X-Irsa-Pod-Token)"}
	}
	sa := serviceAccountOf(p)
	if r.o.PerUserServiceAccounts {
		want, err := UserServiceAccountName(req.Caller.Username)
		if err != nil {
			return broker.Workload{}, &broker.Error{Kind: broker.KindInvalid, Code: "invalid_username", Message: err.Error()}
		}
		if sa != want {
			return broker.Workload{}, &broker.Error{Kind: broker.KindConflict, Code: "service_account_mismatch",
				Message: fmt.Sprintf("per-user service accounts are on: pod %s runs as %s, not as %s", p.Name, sa, want)}
		}
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

// bind verifies the pod token and returns the run's pod it names.
func (r *Resolver) bind(ctx context.Context, runID, token string, pods []*corev1.Pod) (*corev1.Pod, error) {
	id, err := r.o.PodTokens.Review(ctx, token)
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if id.Namespace == p.Namespace && id.PodName == p.Name && id.PodUID == p.UID && id.ServiceAccount == serviceAccountOf(p) {
			return p, nil
		}
	}
	r.log.Warn("pod token does not belong to the run", "run_id", runID, "token_pod", id.PodName, "token_namespace", id.Namespace)
	return nil, &broker.Error{Kind: broker.KindForbidden, Code: "pod_token_mismatch",
		Message: fmt.Sprintf("the pod token does not belong to a live pod of run %s", runID)}
}
