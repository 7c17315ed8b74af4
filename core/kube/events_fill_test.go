package kube

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
)

// TestFillAlertEvent: a pool passing 80 % is a Warning Event on the mapping
// ConfigMap, annotated with the pool.
func TestFillAlertEvent(t *testing.T) {
	cs := fake.NewSimpleClientset()
	e, stop := NewEvents(cs, hclog.NewNullLogger())
	defer stop()
	e.FillAlert("domino-field", "domino-org-iamrole-mapping")("pool", "acme", 0.83)
	e.FillAlert("domino-field", "domino-org-iamrole-mapping")("role", "arn:aws:iam::946429944765:role/p", 0.8)
	var got []corev1.Event
	polltest.Until(t, "two fill Events", func() bool {
		l, err := cs.CoreV1().Events("domino-field").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got = l.Items
		return len(got) == 2
	})
	reasons := map[string]corev1.Event{}
	for _, ev := range got {
		reasons[ev.Reason] = ev
	}
	pool, ok := reasons[ReasonPoolNearlyFull]
	if !ok || pool.Type != corev1.EventTypeWarning || pool.InvolvedObject.Kind != "ConfigMap" || pool.InvolvedObject.Name != "domino-org-iamrole-mapping" ||
		pool.Annotations[AnnotationPool] != "acme" || !strings.Contains(pool.Message, "proxy pool acme is 83% full") {
		t.Errorf("pool Event: %+v", pool)
	}
	if role, ok := reasons[ReasonRoleNearlyFull]; !ok || role.Annotations[AnnotationRole] != "arn:aws:iam::946429944765:role/p" {
		t.Errorf("role Event: %+v", role)
	}
}
