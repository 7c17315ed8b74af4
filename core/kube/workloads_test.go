package kube

import (
	"context"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func pod(name, run, user string, phase corev1.PodPhase, extra map[string]string) *corev1.Pod {
	l := map[string]string{brokerapi.LabelExecutionID: run, brokerapi.LabelStartingUser: user}
	for k, v := range extra {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "domino-compute", Labels: l},
		Spec:       corev1.PodSpec{ServiceAccountName: "run-" + run},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestResolver(t *testing.T) {
	cs := fake.NewClientset(
		pod("run-r1-abc", "r1", "u1", corev1.PodRunning, nil),
		pod("run-r2-old", "r2", "u1", corev1.PodSucceeded, nil),
		pod("run-r3-master", "r3", "u2", corev1.PodRunning, map[string]string{brokerapi.LabelWorkloadType: "cluster-master"}),
		pod("run-r3-worker", "r3", "u2", corev1.PodPending, map[string]string{brokerapi.LabelWorkloadType: "cluster-worker"}),
	)
	r, err := NewResolver(cs, ResolverOptions{Namespace: "domino-compute"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := r.Resolve(ctx, model.WorkloadRequest{RunID: "r1"})
	if err != nil || w.OwnerID != "u1" || w.ServiceAccount != "run-r1" || w.Pod != "run-r1-abc" || w.Namespace != "domino-compute" {
		t.Fatalf("r1: %+v %v", w, err)
	}
	if w.Labels[brokerapi.LabelExecutionID] != "r1" {
		t.Fatalf("labels not passed: %v", w.Labels)
	}
	if _, err := r.Resolve(ctx, model.WorkloadRequest{RunID: "r2"}); !isKind(err, model.KindNotFound) {
		t.Fatalf("finished run: %v", err)
	}
	if _, err := r.Resolve(ctx, model.WorkloadRequest{RunID: "nope"}); !isKind(err, model.KindNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
	w, err = r.Resolve(ctx, model.WorkloadRequest{RunID: "r3", WorkloadType: "cluster-worker"})
	if err != nil || w.Pod != "run-r3-worker" || w.Type != "cluster-worker" {
		t.Fatalf("r3 worker: %+v %v", w, err)
	}

	// A new pod shows up through the watch, a deleted one goes away.
	if _, err := cs.CoreV1().Pods("domino-compute").Create(ctx, pod("run-r4-x", "r4", "u3", corev1.PodPending, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the new pod r4 through the watch", func() bool { _, err := r.Resolve(ctx, model.WorkloadRequest{RunID: "r4"}); return err == nil })
	if err := cs.CoreV1().Pods("domino-compute").Delete(ctx, "run-r1-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the deleted pod r1 to go", func() bool { _, err := r.Resolve(ctx, model.WorkloadRequest{RunID: "r1"}); return err != nil })
}

func isKind(err error, k model.Kind) bool {
	got, _, _ := model.Classify(err)
	return err != nil && got == k
}

// LivePodsNow reads the API server, not the cache: a pod the cache has not
// seen (the resolver is not even started here) counts, and only live pods
// of that service account do.
func TestLivePodsNow(t *testing.T) {
	mine := pod("run-r1-a", "r1", "u1", corev1.PodRunning, nil)
	ended := pod("run-r1-b", "r1", "u1", corev1.PodSucceeded, nil)
	other := pod("run-r2-a", "r2", "u1", corev1.PodPending, nil)
	r, err := NewResolver(fake.NewClientset(mine, ended, other), ResolverOptions{Namespace: "domino-compute"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.LivePodsNow(context.Background(), "run-r1")
	if err != nil || len(got) != 1 || got[0].Name != "run-r1-a" {
		t.Fatalf("live pods of run-r1: %+v %v", got, err)
	}
}
