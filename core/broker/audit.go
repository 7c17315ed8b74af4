package broker

import (
	"context"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// AuditedTrust decorates the trust writer: every subject a map request adds
// (or undoes) is recorded through Audit with the run and user of the pods
// that run as its service account.
type AuditedTrust struct {
	Next  TrustWriter
	Pods  Pods
	Audit Auditor
}

var _ TrustWriter = (*AuditedTrust)(nil)

// EnsureAdded implements TrustWriter.
func (a *AuditedTrust) EnsureAdded(ctx context.Context, roleARN string, subjects ...string) (bool, error) {
	added, err := a.Next.EnsureAdded(ctx, roleARN, subjects...)
	if err == nil && added {
		a.record(true, "map", roleARN, subjects)
	}
	return added, err
}

// Remove implements TrustWriter.
func (a *AuditedTrust) Remove(ctx context.Context, roleARN string, subjects ...string) error {
	err := a.Next.Remove(ctx, roleARN, subjects...)
	if err == nil {
		a.record(false, "undo", roleARN, subjects)
	}
	return err
}

func (a *AuditedTrust) record(added bool, cause, role string, subjects []string) {
	for _, s := range subjects {
		ps, err := model.ParseSubject(s)
		if err != nil {
			continue
		}
		pods := a.Pods.LivePodsOf(ps.ServiceAccount)
		if ps.Namespace != a.Pods.Namespace() || len(pods) == 0 {
			a.Audit.Record(model.TrustChange{Added: added, Role: role, Subject: s, Cause: cause,
				Pod: model.Pod{Namespace: ps.Namespace, ServiceAccount: ps.ServiceAccount}})
			continue
		}
		for _, p := range pods {
			a.Audit.Record(model.TrustChange{Added: added, Role: role, Subject: s, Cause: cause, Pod: p})
		}
	}
}
