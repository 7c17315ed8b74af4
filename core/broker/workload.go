package broker

import (
	"context"
	"sync"

	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// WorkloadRequest asks which workload a run is and whether the caller owns it.
type WorkloadRequest struct {
	RunID        string
	WorkloadType string
	Caller       sdk.Identity
	// PodToken is the pod's projected service-account token when the sidecar
	// sent one (X-Irsa-Pod-Token); resolvers that can verify it bind the request
	// to that pod.
	PodToken string
}

// Workload is a resolved run.
type Workload struct {
	policy.Workload
	// OwnerID is the Domino user id that started the run.
	OwnerID string
}

// WorkloadResolver finds the workload behind a run id. It returns an error of
// KindNotFound for an unknown run and KindForbidden when the caller may not map it.
type WorkloadResolver interface {
	Resolve(ctx context.Context, req WorkloadRequest) (Workload, error)
}

// DevResolver is the resolver without Kubernetes: every run belongs to its
// caller and runs as service account run-<run_id> in Namespace.
type DevResolver struct {
	Namespace string
}

// Resolve implements WorkloadResolver.
func (d DevResolver) Resolve(_ context.Context, req WorkloadRequest) (Workload, error) {
	ns := d.Namespace
	if ns == "" {
		ns = "domino-compute"
	}
	return Workload{
		Workload: policy.Workload{
			RunID:          req.RunID,
			Type:           req.WorkloadType,
			Namespace:      ns,
			ServiceAccount: "run-" + req.RunID,
		},
		OwnerID: req.Caller.ID,
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
		return newErr(KindNotFound, "service_account_not_found", "service account %s is not managed here", name)
	}
	delete(m.names, name)
	return nil
}
