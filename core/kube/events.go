package kube

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// Event reasons of trust changes.
const (
	ReasonTrustAdded   = "TrustPolicySubjectAdded"
	ReasonTrustRemoved = "TrustPolicySubjectRemoved"
)

// TrustChange is one subject added to or removed from one role.
type TrustChange struct {
	Added   bool
	Role    string
	Subject string
	// Why: "map", "undo", "pod-gone" or "reconcile".
	Cause string
	// Pod is the workload concerned, when known.
	Pod PodInfo
}

// Events records every trust change as a structured log line and, with a
// recorder, as a Kubernetes Event on the pod (or, once the pod is gone, on
// its service account).
type Events struct {
	rec record.EventRecorder
	log hclog.Logger
}

// NewEvents records Events through cs (nil: logs only) as component
// "irsa-broker". Call the returned stop at shutdown.
func NewEvents(cs kubernetes.Interface, log hclog.Logger) (*Events, func()) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	e := &Events{log: log.Named("trust-audit")}
	if cs == nil {
		return e, func() {}
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	e.rec = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "irsa-broker"})
	return e, b.Shutdown
}

// Record logs c and emits its Event.
func (e *Events) Record(c TrustChange) {
	verb, reason := "removed from", ReasonTrustRemoved
	if c.Added {
		verb, reason = "added to", ReasonTrustAdded
	}
	e.log.Info("trust policy changed", "op", map[bool]string{true: "add", false: "remove"}[c.Added], "cause", c.Cause,
		"role", c.Role, "subject", c.Subject, "run_id", c.Pod.RunID, "user_id", c.Pod.UserID, "pod", c.Pod.Name, "namespace", c.Pod.Namespace)
	if e.rec == nil || c.Pod.Namespace == "" {
		return
	}
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "ServiceAccount", Namespace: c.Pod.Namespace, Name: c.Pod.ServiceAccount}
	if c.Pod.Name != "" && c.Added {
		ref = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: c.Pod.Namespace, Name: c.Pod.Name, UID: c.Pod.UID}
	}
	msg := fmt.Sprintf("%s %s the trust policy of %s (%s)", c.Subject, verb, c.Role, c.Cause)
	if c.Pod.RunID != "" {
		msg += fmt.Sprintf("; run %s, user %s", c.Pod.RunID, c.Pod.UserID)
	}
	e.rec.AnnotatedEventf(ref, map[string]string{AnnotationRole: c.Role}, corev1.EventTypeNormal, reason, "%s", msg)
}

// AuditedTrust decorates the broker's trust writer: every subject a map
// request adds (or undoes) is recorded through Events with its run and user.
type AuditedTrust struct {
	Next     broker.TrustWriter
	Resolver *Resolver
	Events   *Events
}

var _ broker.TrustWriter = (*AuditedTrust)(nil)

// EnsureAdded implements broker.TrustWriter.
func (a *AuditedTrust) EnsureAdded(ctx context.Context, roleARN string, subjects ...string) (bool, error) {
	added, err := a.Next.EnsureAdded(ctx, roleARN, subjects...)
	if err == nil && added {
		a.record(true, "map", roleARN, subjects)
	}
	return added, err
}

// Remove implements broker.TrustWriter.
func (a *AuditedTrust) Remove(ctx context.Context, roleARN string, subjects ...string) error {
	err := a.Next.Remove(ctx, roleARN, subjects...)
	if err == nil {
		a.record(false, "undo", roleARN, subjects)
	}
	return err
}

func (a *AuditedTrust) record(added bool, cause, role string, subjects []string) {
	for _, s := range subjects {
		ps, err := trust.ParseSubject(s)
		if err != nil {
			continue
		}
		pods := a.Resolver.LivePodsOf(ps.ServiceAccount)
		if ps.Namespace != a.Resolver.Namespace() || len(pods) == 0 {
			a.Events.Record(TrustChange{Added: added, Role: role, Subject: s, Cause: cause,
				Pod: PodInfo{Namespace: ps.Namespace, ServiceAccount: ps.ServiceAccount}})
			continue
		}
		for _, p := range pods {
			a.Events.Record(TrustChange{Added: added, Role: role, Subject: s, Cause: cause, Pod: p})
		}
	}
}
