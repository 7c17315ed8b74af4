package mapping

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
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

// Snapshot reads the ConfigMap. A missing ConfigMap is an empty snapshot.
func (s *ConfigMapStore) Snapshot(ctx context.Context) (Snapshot, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Snapshot{Revision: absentRevision, Mappings: map[string]Mapping{}}, nil
	}
	if err != nil {
		return Snapshot{}, s.unavailable("get", err)
	}
	return s.cache.snapshot(cm.ResourceVersion, cm.Data, s.log), nil
}

// Put validates m and sets its org's key, creating the ConfigMap if missing.
func (s *ConfigMapStore) Put(ctx context.Context, m Mapping) error {
	if err := m.Validate(); err != nil {
		return err
	}
	value := m.Value()
	return s.modify(ctx, "put", func(data map[string]string) error {
		data[m.Org] = value
		return nil
	}, true)
}

// Delete removes org's key, or returns ErrNotFound.
func (s *ConfigMapStore) Delete(ctx context.Context, org string) error {
	return s.modify(ctx, "delete", func(data map[string]string) error {
		if _, ok := data[org]; !ok {
			return fmt.Errorf("org %q: %w", org, ErrNotFound)
		}
		delete(data, org)
		return nil
	}, false)
}

// modify runs Get → change → Update (or Create when the ConfigMap is missing
// and create is set), retrying the whole cycle on conflicts. Errors returned
// by change (ErrNotFound) are returned as they are; API errors wrap
// ErrUnavailable.
func (s *ConfigMapStore) modify(ctx context.Context, op string, change func(map[string]string) error, create bool) error {
	cms := s.client.CoreV1().ConfigMaps(s.namespace)
	retriable := func(err error) bool {
		return (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && ctx.Err() == nil
	}
	var changeErr error
	err := retry.OnError(s.backoff, retriable, func() error {
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			data := map[string]string{}
			if changeErr = change(data); changeErr != nil {
				return nil
			}
			if !create {
				return err
			}
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace},
				Data:       data,
			}, metav1.CreateOptions{})
			return err
		case err != nil:
			return err
		}
		cm = cm.DeepCopy()
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		if changeErr = change(cm.Data); changeErr != nil {
			return nil
		}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	switch {
	case changeErr != nil:
		return changeErr
	case err != nil:
		return s.unavailable(op, err)
	}
	s.log.Debug("configmap updated", "op", op)
	return nil
}
