package kube

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
)

// wired is a run pod whose sidecar is given endpoint as its broker.
func wired(name, endpoint string, phase corev1.PodPhase) *corev1.Pod {
	p := pod(name, name, "u1", phase, nil)
	p.Spec.Containers = []corev1.Container{
		{Name: "run", Env: []corev1.EnvVar{{Name: "AWS_CONFIG_FILE", Value: "/var/run/.aws/config"}}},
		{Name: "aws-config-file-generator", Env: []corev1.EnvVar{{Name: brokerapi.EnvEndpoint, Value: endpoint}}},
	}
	return p
}

func TestExclusive(t *testing.T) {
	const own = "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa"
	other := wired("other", "https://irsa-svc.irsa-next.svc:443/map_iam_roles_to_pod_sa", corev1.PodRunning)
	cs := fake.NewClientset(
		wired("mine", own, corev1.PodRunning),
		wired("mine-short", "https://irsa-svc.domino-field.svc.cluster.local", corev1.PodPending),
		wired("ended", "https://old-irsa.domino-field", corev1.PodSucceeded),
		pod("plain", "plain", "u1", corev1.PodRunning, nil), // no sidecar: not wired to any service
		other,
	)
	var logs syncbuf.Buffer
	r, err := NewResolver(cs, ResolverOptions{Namespace: "domino-compute", Service: "irsa-svc.domino-field",
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Exclusive(ctx); err == nil || !strings.Contains(err.Error(), "not synced") {
		t.Fatalf("before the cache syncs: %v", err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	err = r.Exclusive(ctx)
	if err == nil || !strings.Contains(err.Error(), "irsa-svc.irsa-next (pod other)") {
		t.Fatalf("a live pod wired to another service: %v", err)
	}

	// The other service's pod ends: this replica becomes ready.
	other.Status.Phase = corev1.PodSucceeded
	if _, err := cs.CoreV1().Pods("domino-compute").UpdateStatus(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the check to pass once the other pod ended", func() bool { return r.Exclusive(ctx) == nil })

	// Once passed, a pod of another service no longer unreadies this
	// replica (its own workloads keep being served) but is logged.
	if _, err := cs.CoreV1().Pods("domino-compute").Create(ctx, wired("late", "https://irsa-next.domino-field", corev1.PodPending), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the late pod to be logged", func() bool { return logs.Contains(`"other_service":"irsa-next.domino-field"`) })
	if err := r.Exclusive(ctx); err != nil {
		t.Fatalf("after passing once: %v", err)
	}
}

func TestExclusiveOff(t *testing.T) {
	cs := fake.NewClientset(wired("other", "https://irsa-next.domino-field", corev1.PodRunning))
	r, err := NewResolver(cs, ResolverOptions{Namespace: "domino-compute"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Exclusive(context.Background()); err != nil {
		t.Fatalf("without a service URL the check is off: %v", err)
	}
}
