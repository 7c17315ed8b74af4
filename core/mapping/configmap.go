package mapping

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// Defaults of the existing service.
const (
	DefaultConfigMapNamespace = "domino-field"
	DefaultConfigMapName      = "domino-org-iamrole-mapping"
)

// absentRevision is the Revision of the snapshot of a missing ConfigMap.
const absentRevision = "0"

// ConfigMapStore keeps mappings in the legacy ConfigMap: key = org, value =
// the mapping's legacy JSON (see Mapping.Value). Writes are read-modify-write
// guarded by the ConfigMap's resourceVersion and retried on conflict, so
// concurrent writers (goroutines or replicas) never lose each other's
// changes. Snapshot's Revision is the resourceVersion. Entries that do not
// parse are logged, left out of snapshots and preserved on write. Kubernetes
// API errors other than NotFound wrap ErrUnavailable.
type ConfigMapStore struct {
	client    kubernetes.Interface
	namespace string
	name      string
	log       hclog.Logger
	backoff   wait.Backoff

	cache parsedCache

	// Set by Start: the ConfigMap as last seen by the watch or by our own
	// writes, so Snapshot costs no API call.
	mu      sync.Mutex
	watched bool
	latest  *corev1.ConfigMap // nil: absent
}

var _ Store = (*ConfigMapStore)(nil)

// NewConfigMapStore returns a store over ConfigMap namespace/name. Empty
// namespace or name take the defaults (domino-field/domino-org-iamrole-mapping).
func NewConfigMapStore(client kubernetes.Interface, namespace, name string, log hclog.Logger) *ConfigMapStore {
	if namespace == "" {
		namespace = DefaultConfigMapNamespace
	}
	if name == "" {
		name = DefaultConfigMapName
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &ConfigMapStore{
		client:    client,
		namespace: namespace,
		name:      name,
		log:       log.Named("mapping-configmap").With("configmap", namespace+"/"+name),
		// Enough attempts, with jitter, for a handful of concurrent writers.
		backoff: wait.Backoff{Steps: 10, Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 1.0, Cap: time.Second},
	}
}

func (s *ConfigMapStore) unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s configmap %s/%s: %w", ErrUnavailable, op, s.namespace, s.name, err)
}

// Start watches the ConfigMap until ctx ends, so that Snapshot answers from
// memory instead of reading the API server per request. It returns once the
// watch has synced. Without Start, Snapshot reads the ConfigMap each time.
func (s *ConfigMapStore) Start(ctx context.Context) error {
	sel := fields.OneTermEqualSelector("metadata.name", s.name).String()
	cms := s.client.CoreV1().ConfigMaps(s.namespace)
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cms.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cms.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 10*time.Minute, cache.Indexers{})
	ours := func(obj any) (*corev1.ConfigMap, bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		cm, ok := obj.(*corev1.ConfigMap)
		return cm, ok && cm.Name == s.name
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cm, ok := ours(obj); ok {
				s.observe(cm)
			}
		},
		UpdateFunc: func(_, obj any) {
			if cm, ok := ours(obj); ok {
				s.observe(cm)
			}
		},
		DeleteFunc: func(obj any) {
			if _, ok := ours(obj); ok {
				s.observeDeleted()
			}
		},
	}); err != nil {
		return err
	}
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return s.unavailable("watch", ctx.Err())
	}
	s.mu.Lock()
	s.watched = true
	s.mu.Unlock()
	return nil
}

// observe records cm if it is newer than what the store has seen: watch
// events and the results of our own writes arrive in either order.
func (s *ConfigMapStore) observe(cm *corev1.ConfigMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest != nil && !newerVersion(cm.ResourceVersion, s.latest.ResourceVersion) {
		return
	}
	s.latest = cm
}

func (s *ConfigMapStore) observeDeleted() {
	s.mu.Lock()
	s.latest = nil
	s.mu.Unlock()
}

// newerVersion compares resourceVersions; they are opaque strings, but the
// API server's are increasing integers. Unparseable ones count as newer.
func newerVersion(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return true
	}
	return x > y
}

// Snapshot returns the mappings: from the watch after Start, otherwise by
// reading the ConfigMap. A missing ConfigMap is an empty snapshot.
func (s *ConfigMapStore) Snapshot(ctx context.Context) (model.Snapshot, error) {
	s.mu.Lock()
	watched, cm := s.watched, s.latest
	s.mu.Unlock()
	if !watched {
		var err error
		cm, err = s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = nil
		} else if err != nil {
			return model.Snapshot{}, s.unavailable("get", err)
		}
	}
	if cm == nil {
		return model.Snapshot{Revision: absentRevision, Mappings: map[string]model.Mapping{}}, nil
	}
	return s.cache.snapshot(cm.ResourceVersion, cm.Data, s.log), nil
}

// Put validates m and sets its org's key, creating the ConfigMap if missing.
func (s *ConfigMapStore) Put(ctx context.Context, m model.Mapping) error {
	if err := m.Validate(); err != nil {
		return err
	}
	value := Value(m)
	_, err := s.modify(ctx, "put", "", func(data map[string]string, _ string) (bool, error) {
		data[m.Org] = value
		return true, nil
	}, true)
	return err
}

// Delete removes org's key, or returns ErrNotFound.
func (s *ConfigMapStore) Delete(ctx context.Context, org string) error {
	_, err := s.modify(ctx, "delete", "", func(data map[string]string, _ string) (bool, error) {
		if _, ok := data[org]; !ok {
			return false, notFound(org)
		}
		delete(data, org)
		return true, nil
	}, false)
	return err
}

// Apply writes b with one Update of the ConfigMap (or one Create when it is
// missing and b puts something), guarded by the resourceVersion it read.
// Without b.IfRevision a conflict is retried like a Put's; with it, the
// resourceVersion must equal b.IfRevision ("0": the ConfigMap is absent) and
// a conflict means another writer changed the mappings: KindPrecondition.
func (s *ConfigMapStore) Apply(ctx context.Context, b model.Batch) (string, error) {
	if err := b.Validate(); err != nil {
		return "", err
	}
	values := make(map[string]string, len(b.Put))
	for _, m := range b.Put {
		values[m.Org] = Value(m)
	}
	return s.modify(ctx, "apply", b.IfRevision, func(data map[string]string, rev string) (bool, error) {
		if b.IfRevision != "" && b.IfRevision != rev {
			return false, model.StaleRevision(b.IfRevision, rev)
		}
		for _, org := range b.Delete {
			if _, ok := data[org]; !ok {
				return false, notFound(org)
			}
		}
		for _, org := range b.Delete {
			delete(data, org)
		}
		for org, v := range values {
			data[org] = v
		}
		return !b.Empty(), nil
	}, len(b.Put) > 0)
}

// modify runs Get → change → Update (or Create when the ConfigMap is missing
// and create is set), retrying the whole cycle on conflicts unless
// ifRevision is set (then a conflict is a stale revision). change gets the
// data and the revision read, and says whether to write. Errors returned by
// change (ErrNotFound, a stale revision) are returned as they are; API
// errors wrap ErrUnavailable. It returns the revision after the write (the
// one read when nothing was written).
func (s *ConfigMapStore) modify(ctx context.Context, op, ifRevision string, change func(data map[string]string, rev string) (bool, error), create bool) (string, error) {
	cms := s.client.CoreV1().ConfigMaps(s.namespace)
	retriable := func(err error) bool {
		return ifRevision == "" && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && ctx.Err() == nil
	}
	var (
		changeErr error
		rev       string
	)
	err := retry.OnError(s.backoff, retriable, func() error {
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			data := map[string]string{}
			rev = absentRevision
			var write bool
			if write, changeErr = change(data, absentRevision); changeErr != nil || !write {
				return nil
			}
			if !create {
				return err
			}
			created, err := cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace},
				Data:       data,
			}, metav1.CreateOptions{})
			if err == nil {
				s.observe(created)
				rev = created.ResourceVersion
			}
			return err
		case err != nil:
			return err
		}
		cm = cm.DeepCopy()
		rev = cm.ResourceVersion
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		var write bool
		if write, changeErr = change(cm.Data, cm.ResourceVersion); changeErr != nil || !write {
			return nil
		}
		updated, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err == nil {
			s.observe(updated)
			rev = updated.ResourceVersion
		}
		return err
	})
	switch {
	case changeErr != nil:
		return "", changeErr
	case ifRevision != "" && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)):
		return "", model.StaleRevision(ifRevision, "")
	case err != nil:
		return "", s.unavailable(op, err)
	}
	s.log.Debug("configmap updated", "op", op)
	return rev, nil
}
