package kube

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Event reasons of trust changes.
const (
	ReasonTrustAdded   = "TrustPolicySubjectAdded"
	ReasonTrustRemoved = "TrustPolicySubjectRemoved"
)

// Events records every trust change (it implements broker.Auditor) as a structured log line and, with a
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
func (e *Events) Record(c model.TrustChange) {
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
		ref = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: c.Pod.Namespace, Name: c.Pod.Name, UID: types.UID(c.Pod.UID)}
	}
	msg := fmt.Sprintf("%s %s the trust policy of %s (%s)", c.Subject, verb, c.Role, c.Cause)
	if c.Pod.RunID != "" {
		msg += fmt.Sprintf("; run %s, user %s", c.Pod.RunID, c.Pod.UserID)
	}
	e.rec.AnnotatedEventf(ref, map[string]string{AnnotationRole: c.Role}, corev1.EventTypeNormal, reason, "%s", msg)
}

// Event reasons of trust-policy fill.
const (
	ReasonRoleNearlyFull = "TrustPolicyNearlyFull"
	ReasonPoolNearlyFull = "ProxyPoolNearlyFull"
)

// FillAlert returns what the trust writer and the pools call when a proxy
// role ("role") or a pool ("pool") passes 80 % of its capacity: a warning
// log line and a Warning Event on the mapping ConfigMap namespace/name, the
// object through which admins add members to pools.
func (e *Events) FillAlert(namespace, name string) func(kind, subject string, ratio float64) {
	return func(kind, subject string, ratio float64) {
		reason, what := ReasonRoleNearlyFull, "the trust policy of proxy role "+subject
		if kind == "pool" {
			reason, what = ReasonPoolNearlyFull, "proxy pool "+subject
		}
		msg := fmt.Sprintf("%s is %.0f%% full; add proxy roles to its pool (or make the pool elastic) before maps fail with 409", what, ratio*100)
		e.log.Warn("trust capacity nearly used", "kind", kind, "name", subject, "fill_ratio", ratio)
		if e.rec == nil {
			return
		}
		ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: namespace, Name: name}
		annotations := map[string]string{AnnotationRole: subject}
		if kind == "pool" {
			annotations = map[string]string{AnnotationPool: subject}
		}
		e.rec.AnnotatedEventf(ref, annotations, corev1.EventTypeWarning, reason, "%s", msg)
	}
}

// AnnotationPool names the proxy pool an Event is about.
const AnnotationPool = "irsa-broker.io/pool"
