package broker

import (
	"context"
	"sync"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// WorkloadResolver finds the workload behind a run id (*kube.Resolver). Its
// errors are classified: model.KindNotFound for an unknown run,
// model.KindForbidden when the pod token does not bind the request.
type WorkloadResolver interface {
	Resolve(ctx context.Context, req model.WorkloadRequest) (model.Workload, error)
}

// DevResolver is the resolver without Kubernetes: every run belongs to its
// caller and runs as service account run-<run_id> in Namespace.
type DevResolver struct {
	Namespace string
}

// Resolve implements WorkloadResolver.
func (d DevResolver) Resolve(_ context.Context, req model.WorkloadRequest) (model.Workload, error) {
	ns := d.Namespace
	if ns == "" {
		ns = "domino-compute"
	}
	return model.Workload{
		RunID:          req.RunID,
		Type:           req.WorkloadType,
		Namespace:      ns,
		ServiceAccount: brokerapi.RunPrefix + req.RunID,
		OwnerID:        req.CallerID,
	}, nil
}

// MemoryServiceAccounts keeps service accounts in memory: the dev stand-in for
// Kubernetes. Create is idempotent; deleting an unknown name is KindNotFound.
type MemoryServiceAccounts struct {
	mu    sync.Mutex
	names map[string]bool
}

// Create implements ServiceAccounts.
func (m *MemoryServiceAccounts) Create(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names == nil {
		m.names = map[string]bool{}
	}
	m.names[name] = true
	return nil
}

// Delete implements ServiceAccounts.
func (m *MemoryServiceAccounts) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.names[name] {
		return model.Errorf(model.KindNotFound, "service_account_not_found", "service account %s is not managed here", name)
	}
	delete(m.names, name)
	return nil
}
