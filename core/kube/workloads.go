package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Indexes of the pod cache.
const (
	indexExecutionID    = "execution-id"
	indexServiceAccount = "service-account"
	indexIRSAService    = "irsa-service"
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
	// Service is this broker as workloads name it (brokerapi.ServiceOf of
	// its URL). When set, pods wired to another IRSA service are reported
	// (OtherServices, and a rate-limited log line).
	Service string
	// Registerer, if set, gets irsa_other_irsa_service_pods (with Service).
	Registerer prometheus.Registerer
	Logger     hclog.Logger
}

// Resolver finds a run's pod in an informer cache of the compute namespace,
// indexed by execution id: no API call per request (except a TokenReview
// when a pod token is presented).
type Resolver struct {
	o        ResolverOptions
	cs       kubernetes.Interface
	informer cache.SharedIndexInformer
	log      hclog.Logger
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
			if p, ok := obj.(*corev1.Pod); ok && p.Labels[brokerapi.LabelExecutionID] != "" {
				return []string{p.Labels[brokerapi.LabelExecutionID]}, nil
			}
			return nil, nil
		},
		indexServiceAccount: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				return []string{serviceAccountOf(p)}, nil
			}
			return nil, nil
		},
		indexIRSAService: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				return irsaServicesOf(p), nil
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
			p.Spec = corev1.PodSpec{ServiceAccountName: p.Spec.ServiceAccountName, Containers: endpointsOnly(p.Spec.Containers)}
			p.Status = corev1.PodStatus{Phase: p.Status.Phase}
		}
		return obj, nil
	}); err != nil {
		return nil, err
	}
	r := &Resolver{o: o, cs: cs, informer: inf, log: o.Logger.Named("workloads")}
	if o.Service != "" {
		if err := r.warnOtherServices(time.Minute); err != nil {
			return nil, err
		}
		if o.Registerer != nil {
			if err := o.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "irsa_other_irsa_service_pods",
				Help: "Live pods of the compute namespace wired to another IRSA service (DOMINO_IRSA_ENDPOINT): two services on one namespace race each other's trust-policy writes.",
			}, func() float64 { _, n := r.OtherServices(0); return float64(n) })); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
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

// endpointsOnly keeps, of the containers, only the broker endpoint each
// one is given: what OtherServices needs.
func endpointsOnly(cs []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range cs {
		for _, e := range c.Env {
			if e.Name == brokerapi.EnvEndpoint && e.Value != "" {
				out = append(out, corev1.Container{Name: c.Name, Env: []corev1.EnvVar{e}})
				break
			}
		}
	}
	return out
}

// irsaServicesOf names the IRSA services a pod's containers are wired to
// (values that are not an http(s) URL are not a service and are skipped).
func irsaServicesOf(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if e.Name != brokerapi.EnvEndpoint {
				continue
			}
			if s, err := brokerapi.ServiceOf(e.Value, p.Namespace); err == nil && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// OtherServices reports the IRSA services other than this one
// (ResolverOptions.Service) that live pods of the compute namespace are
// wired to: up to max of them, each with one of its pods, and how many
// live pods are wired elsewhere in all. Two services on one namespace race
// each other's trust-policy writes, and v1.8 takes no lock we could share.
// It is reported (metric, status, log), not enforced: any workload that
// sets the variable would otherwise take the broker out of service.
func (r *Resolver) OtherServices(max int) (services map[string]string, pods int) {
	if r.o.Service == "" {
		return nil, 0
	}
	idx := r.informer.GetIndexer()
	names := idx.ListIndexFuncValues(indexIRSAService)
	sort.Strings(names)
	services = map[string]string{}
	for _, s := range names {
		if s == r.o.Service {
			continue
		}
		objs, _ := idx.ByIndex(indexIRSAService, s)
		for _, o := range objs {
			p := o.(*corev1.Pod)
			if !live(p) {
				continue
			}
			pods++
			if _, seen := services[s]; !seen && len(services) < max {
				services[s] = p.Name
			}
		}
	}
	return services, pods
}

// warnOtherServices logs, at most once per interval, a new live pod wired
// to another IRSA service: rate-limited, not deduplicated, so that pods of
// made-up services cannot hide a real one.
func (r *Resolver) warnOtherServices(interval time.Duration) error {
	var (
		mu   sync.Mutex
		last time.Time
	)
	_, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || !live(p) {
			return
		}
		for _, s := range irsaServicesOf(p) {
			if s == r.o.Service {
				continue
			}
			mu.Lock()
			due := time.Since(last) >= interval
			if due {
				last = time.Now()
			}
			mu.Unlock()
			if due {
				r.log.Error("a pod of the compute namespace is wired to another IRSA service: two services on one namespace race each other's trust-policy writes; run one (see irsa_other_irsa_service_pods and /v2/status)",
					"namespace", p.Namespace, "pod", p.Name, "other_service", s, "service", r.o.Service)
			}
			return
		}
	}})
	return err
}

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

func info(p *corev1.Pod) model.Pod {
	return model.Pod{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), RunID: p.Labels[brokerapi.LabelExecutionID],
		UserID: p.Labels[brokerapi.LabelStartingUser], ServiceAccount: serviceAccountOf(p)}
}

// LivePodsOf returns the live pods running as service account sa, from the cache.
func (r *Resolver) LivePodsOf(sa string) []model.Pod {
	objs, _ := r.informer.GetIndexer().ByIndex(indexServiceAccount, sa)
	var out []model.Pod
	for _, o := range objs {
		if p := o.(*corev1.Pod); live(p) {
			out = append(out, info(p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LivePodsNow asks the API server itself, not the cache, for the live pods
// of the compute namespace that run as service account sa: what clean-up
// checks before removing a subject the cache calls ended
// (broker.CleanerOptions.LivePodsNow).
func (r *Resolver) LivePodsNow(ctx context.Context, sa string) ([]model.Pod, error) {
	list, err := r.cs.CoreV1().Pods(r.o.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.serviceAccountName", sa).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of service account %s: %w", sa, err)
	}
	var out []model.Pod
	for i := range list.Items {
		if p := &list.Items[i]; serviceAccountOf(p) == sa && live(p) {
			out = append(out, info(p))
		}
	}
	return out, nil
}

// OnPodGone calls fn (from the informer's goroutine; it must not block) for
// every pod that stops being a live workload: deleted, or Succeeded/Failed,
// or marked for deletion.
func (r *Resolver) OnPodGone(fn func(model.Pod)) error {
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
func (r *Resolver) Resolve(ctx context.Context, req model.WorkloadRequest) (model.Workload, error) {
	objs, err := r.informer.GetIndexer().ByIndex(indexExecutionID, req.RunID)
	if err != nil {
		return model.Workload{}, err
	}
	var pods []*corev1.Pod
	for _, o := range objs {
		if p := o.(*corev1.Pod); live(p) {
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		return model.Workload{}, model.Errorf(model.KindNotFound, "run_not_found", "no pending or running pod of run %s in namespace %s", req.RunID, r.o.Namespace)
	}
	// Several pods (cluster workers): prefer the one of the requested workload type, then by name.
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	p := pods[0]
	for _, q := range pods {
		if req.WorkloadType != "" && q.Labels[brokerapi.LabelWorkloadType] == req.WorkloadType {
			p = q
			break
		}
	}
	switch {
	case req.PodToken != "" && r.o.PodTokens != nil:
		if p, err = r.bind(ctx, req.RunID, req.PodToken, pods); err != nil {
			return model.Workload{}, err
		}
	case r.o.RequirePodToken:
		return model.Workload{}, model.Errorf(model.KindForbidden, "pod_token_required",
			"this broker requires the pod's own service-account token (%s)", brokerapi.HeaderPodToken)
	}
	sa := serviceAccountOf(p)
	if r.o.PerUserServiceAccounts {
		want, err := UserServiceAccountName(req.Username)
		if err != nil {
			return model.Workload{}, model.Invalid("invalid_username", "%s", err.Error())
		}
		if sa != want {
			return model.Workload{}, model.Errorf(model.KindConflict, "service_account_mismatch",
				"per-user service accounts are on: pod %s runs as %s, not as %s", p.Name, sa, want)
		}
	}
	labels := make(map[string]string, len(p.Labels))
	for k, v := range p.Labels {
		labels[k] = v
	}
	wt := req.WorkloadType
	if wt == "" {
		wt = p.Labels[brokerapi.LabelWorkloadType]
	}
	return model.Workload{RunID: req.RunID, Type: wt, Namespace: p.Namespace, ServiceAccount: sa, Pod: p.Name, Labels: labels,
		OwnerID: p.Labels[brokerapi.LabelStartingUser]}, nil
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
	return nil, model.Errorf(model.KindForbidden, "pod_token_mismatch", "the pod token does not belong to a live pod of run %s", runID)
}
