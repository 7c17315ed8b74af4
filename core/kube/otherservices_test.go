package kube

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
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

func TestOtherServices(t *testing.T) {
	const own = "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa"
	other := wired("other", "https://irsa-svc.irsa-next.svc:443/map_iam_roles_to_pod_sa", corev1.PodRunning)
	cs := fake.NewClientset(
		wired("mine", own, corev1.PodRunning),
		wired("mine-short", "https://irsa-svc.domino-field.svc.cluster.local", corev1.PodPending),
		wired("ended", "https://old-irsa.domino-field", corev1.PodSucceeded),
		wired("garbage", "x", corev1.PodRunning),            // not a URL: no service
		pod("plain", "plain", "u1", corev1.PodRunning, nil), // no sidecar: not wired to any service
		other,
	)
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	r, err := NewResolver(cs, ResolverOptions{Namespace: "domino-compute", Service: "irsa-svc.domino-field", Registerer: reg,
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	services, pods := r.OtherServices(16)
	if pods != 1 || len(services) != 1 || services["irsa-svc.irsa-next"] != "other" {
		t.Fatalf("other services %v, %d pods", services, pods)
	}
	if got := gaugeValue(t, reg, "irsa_other_irsa_service_pods"); got != 1 {
		t.Fatalf("irsa_other_irsa_service_pods = %v", got)
	}
	polltest.Until(t, "the other service's pod to be logged", func() bool { return logs.Contains(`"other_service":"irsa-svc.irsa-next"`) })

	// The other service's pod ends: nothing is reported any more.
	other.Status.Phase = corev1.PodSucceeded
	if _, err := cs.CoreV1().Pods("domino-compute").UpdateStatus(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the report to clear once the other pod ended", func() bool { _, n := r.OtherServices(16); return n == 0 })

	// Many made-up services: the count is exact, the list bounded.
	for i := range 5 {
		p := wired(fmt.Sprintf("made-up-%d", i), fmt.Sprintf("https://svc-%d.ns", i), corev1.PodRunning)
		if _, err := cs.CoreV1().Pods("domino-compute").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	polltest.Until(t, "five pods of other services", func() bool { _, n := r.OtherServices(2); return n == 5 })
	if services, _ := r.OtherServices(2); len(services) != 2 {
		t.Fatalf("bounded list: %v", services)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestOtherServicesOff(t *testing.T) {
	cs := fake.NewClientset(wired("other", "https://irsa-next.domino-field", corev1.PodRunning))
	r, err := NewResolver(cs, ResolverOptions{Namespace: "domino-compute"})
	if err != nil {
		t.Fatal(err)
	}
	if services, n := r.OtherServices(16); services != nil || n != 0 {
		t.Fatalf("without a service URL nothing is reported: %v %d", services, n)
	}
}
