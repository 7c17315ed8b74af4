package kube

import (
	"context"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// memTrust is an in-memory TrustEditor: role → subjects.
type memTrust struct {
	mu    sync.Mutex
	roles map[string][]string
}

func (m *memTrust) Subjects(_ context.Context, role string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.roles[role]), nil
}

func (m *memTrust) Remove(_ context.Context, role string, subjects ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range subjects {
		ps, _ := trust.ParseSubject(s)
		m.roles[role] = slices.DeleteFunc(m.roles[role], func(x string) bool {
			px, err := trust.ParseSubject(x)
			return err == nil && px.Namespace == ps.Namespace && px.ServiceAccount == ps.ServiceAccount
		})
	}
	return nil
}

func (m *memTrust) get(role string) []string {
	s, _ := m.Subjects(context.Background(), role)
	slices.Sort(s)
	return s
}

const (
	roleA = "arn:aws:iam::111122223333:role/a"
	roleB = "arn:aws:iam::111122223333:role/b"
)

func TestCleaner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset(
		pod("p1", "r1", "u1", corev1.PodRunning, nil),
		pod("p2", "r2", "u1", corev1.PodRunning, nil),
	)
	mt := &memTrust{roles: map[string][]string{
		roleA: {"system:serviceaccount:domino-compute:run-r1", "system:serviceaccount:domino-compute:run-r2",
			"*:domino-compute:run-old", "system:serviceaccount:other-ns:run-old"},
		roleB: {"system:serviceaccount:domino-compute:run-r2"},
	}}
	r, err := NewResolver(cs, ResolverOptions{Namespace: "domino-compute"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCleaner(CleanerOptions{Resolver: r, Trust: mt,
		Roles: func(context.Context) ([]string, error) { return []string{roleA, roleB}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The first reconcile takes out the legacy subject of a run without pods,
	// and leaves other namespaces and live runs alone.
	n, err := c.Reconcile(ctx)
	if err != nil || n != 1 {
		t.Fatalf("reconcile removed %d, %v", n, err)
	}
	if got := mt.get(roleA); !slices.Equal(got, []string{"system:serviceaccount:domino-compute:run-r1", "system:serviceaccount:domino-compute:run-r2", "system:serviceaccount:other-ns:run-old"}) {
		t.Fatalf("role a: %v", got)
	}

	go c.Run(ctx)
	eventually(t, func() bool { return c.leading.Load() })
	// A pod that finishes takes its subject out of every role.
	p2 := pod("p2", "r2", "u1", corev1.PodSucceeded, nil)
	if _, err := cs.CoreV1().Pods("domino-compute").UpdateStatus(ctx, p2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		return !slices.Contains(mt.get(roleA), "system:serviceaccount:domino-compute:run-r2") && len(mt.get(roleB)) == 0
	})
	// A deleted pod too; a pod that shares its service account keeps it.
	shared := pod("p1b", "r1", "u1", corev1.PodPending, nil)
	if _, err := cs.CoreV1().Pods("domino-compute").Create(ctx, shared, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(r.LivePodsOf("run-r1")) == 2 })
	if err := cs.CoreV1().Pods("domino-compute").Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(r.LivePodsOf("run-r1")) == 1 })
	if _, err := c.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mt.get(roleA), "system:serviceaccount:domino-compute:run-r1") {
		t.Fatal("subject removed while a pod still runs as it")
	}
	if err := cs.CoreV1().Pods("domino-compute").Delete(ctx, "p1b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return slices.Equal(mt.get(roleA), []string{"system:serviceaccount:other-ns:run-old"}) })

	// Prune names the same stale subjects.
	stale, err := r.Prune(ctx, roleA, []string{"system:serviceaccount:domino-compute:run-r9", "system:serviceaccount:other-ns:x"})
	if err != nil || !slices.Equal(stale, []string{"system:serviceaccount:domino-compute:run-r9"}) {
		t.Fatalf("prune %v %v", stale, err)
	}
}

func TestProxyRoles(t *testing.T) {
	st := mapping.NewMemoryStore()
	ctx := context.Background()
	for _, m := range []mapping.Mapping{
		{Org: "a", Pairs: []mapping.RolePair{{IAMRoleARN: "arn:aws:iam::444455556666:role/x", ProxyIAMRoleARN: roleB, UpdateTrustPolicy: true}}},
		{Org: "b", Pairs: []mapping.RolePair{{IAMRoleARN: "arn:aws:iam::444455556666:role/y", ProxyIAMRoleARN: roleA, UpdateTrustPolicy: true},
			{IAMRoleARN: "arn:aws:iam::444455556666:role/z", ProxyIAMRoleARN: "arn:aws:iam::111122223333:role/unmanaged", UpdateTrustPolicy: false}}},
		{Org: "c", Pairs: []mapping.RolePair{{IAMRoleARN: "arn:aws:iam::444455556666:role/w", ProxyIAMRoleARN: roleB, UpdateTrustPolicy: true}}},
	} {
		if err := st.Put(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ProxyRoles(st)(ctx)
	if err != nil || !slices.Equal(got, []string{roleA, roleB}) {
		t.Fatalf("%v %v", got, err)
	}
}
