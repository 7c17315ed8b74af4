package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/irsa-broker/irsa-broker/core/kube"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// TestConfigMapStoreRacingWriters: two stores (two clients, as two
// replicas) write disjoint orgs at once against the real API server's
// optimistic concurrency; nothing is lost.
func TestConfigMapStoreRacingWriters(t *testing.T) {
	ctx := context.Background()
	const perWriter = 25
	var stores []*mapping.ConfigMapStore
	for range 2 {
		cs, err := env.cp.Clientset(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, mapping.NewConfigMapStore(cs, fieldNS, "race-mapping", nil))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWriter)
	for w, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				m := model.Mapping{Org: fmt.Sprintf("w%d-org-%02d", w, i), Pairs: []model.RolePair{
					{IAMRoleARN: env.assetARNs[0], ProxyIAMRoleARN: env.roleARNs[0], UpdateTrustPolicy: true}}}
				if err := st.Put(ctx, m); err != nil {
					errs <- err
				}
				if i%5 == 4 { // and delete some of its own again
					if err := st.Delete(ctx, fmt.Sprintf("w%d-org-%02d", w, i-1)); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	snap, err := stores[0].Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for w := range 2 {
		for i := range perWriter {
			org := fmt.Sprintf("w%d-org-%02d", w, i)
			_, ok := snap.Mappings[org]
			if want := i%5 != 3; ok != want {
				t.Errorf("%s present=%v, want %v", org, ok, want)
			}
		}
	}
}

// TestRoleLeaseLock: lockers of four "replicas" never hold one role's
// Lease at once; a holder that stops renewing loses it after its duration.
func TestRoleLeaseLock(t *testing.T) {
	ctx := context.Background()
	role := "arn:aws:iam::946429944765:role/lease-test"
	var lockers []*kube.LeaseLocker
	var clients []*kubernetes.Clientset
	for i := range 4 {
		cs, err := env.cp.Clientset(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cs)
		lockers = append(lockers, kube.NewLeaseLocker(cs, kube.LeaseLockerOptions{Namespace: fieldNS, Identity: fmt.Sprintf("locker-%d", i), LeaseDuration: 3 * time.Second}))
	}
	var inside, maxInside, total atomic.Int32
	var wg sync.WaitGroup
	for i, l := range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				unlock, err := l.Lock(lctx, role)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				// Work under the lock, as a trust-policy round does: a round
				// trip to the API server, which widens the window in which
				// two holders would overlap.
				if _, err := clients[i].CoordinationV1().Leases(fieldNS).List(ctx, metav1.ListOptions{}); err != nil {
					t.Error(err)
				}
				inside.Add(-1)
				total.Add(1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 || total.Load() != 32 {
		t.Fatalf("max holders at once %d, rounds %d", maxInside.Load(), total.Load())
	}

	// A replica cut off from the API server stops renewing; another takes over.
	var cut atomic.Bool
	rc := rest.CopyConfig(env.cp.Config)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			if cut.Load() {
				return nil, errors.New("partitioned")
			}
			return rt.RoundTrip(r)
		})
	})
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	crashed := kube.NewLeaseLocker(cs, kube.LeaseLockerOptions{Namespace: fieldNS, Identity: "crashed", LeaseDuration: 3 * time.Second})
	unlock, err := crashed.Lock(ctx, role)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	cut.Store(true)
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	unlock2, err := lockers[0].Lock(lctx, role)
	if err != nil {
		t.Fatalf("lease never expired: %v", err)
	}
	unlock2()
	if waited := time.Since(start); waited < 3*time.Second {
		t.Fatalf("took over after %s, before the lease duration", waited)
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestOtherIRSAServiceIsReported: a broker whose compute namespace has live
// pods wired to another IRSA service (a v1.8 service left running, or a
// second release) reports it to admins (/v2/status) and in its log, but
// still serves: any workload could set the variable, so it must not take
// the broker down. Pods wired to itself under another DNS form of its name
// are not reported.
func TestOtherIRSAServiceIsReported(t *testing.T) {
	const ns = "shared-compute"
	ctx, cancel := testContext(t)
	defer cancel()
	if err := ensureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	wiredPod := func(name, endpoint string) *corev1.Pod {
		no := false
		p, err := env.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{brokerapi.LabelExecutionID: name}},
			Spec: corev1.PodSpec{AutomountServiceAccountToken: &no, Containers: []corev1.Container{
				{Name: "run", Image: "example.invalid/run:1"},
				{Name: "aws-config-file-generator", Image: "example.invalid/irsa-client:1",
					Env: []corev1.EnvVar{{Name: brokerapi.EnvEndpoint, Value: endpoint}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deletePod(t, p) })
		return p
	}
	wiredPod("mine", "https://irsa-svc.domino-field.svc.cluster.local/map_iam_roles_to_pod_sa")
	old := wiredPod("old", "https://irsa-svc.v18-field/map_iam_roles_to_pod_sa")

	// Ready (startBroker waits for it) beside the other service's pod.
	b := startTestBroker(t, "one-service", "--compute-namespace", ns, "--leader-election=false",
		"--service-url", "https://irsa-svc.domino-field")
	status := func() string {
		code, body := call(t, http.MethodGet, b.url+brokerapi.PathV2Status, "admin-token", nil)
		if code != http.StatusOK {
			t.Fatalf("/v2/status: %d %s", code, body)
		}
		return body
	}
	if body := status(); !strings.Contains(body, `"other_irsa_services":{"pods":1,"services":{"irsa-svc.v18-field":"old"}}`) {
		t.Fatalf("/v2/status does not report the other service: %s", body)
	}
	eventually(t, "the log to name the other service and its pod", func() bool {
		return b.logged("a pod of the compute namespace is wired to another IRSA service: two services on one namespace race each other's trust-policy writes; run one (see irsa_other_irsa_service_pods and /v2/status)",
			"pod", "old", "other_service", "irsa-svc.v18-field")
	})
	deletePod(t, old)
	eventually(t, "the report to clear once the other service's pod is gone", func() bool {
		return strings.Contains(status(), `"other_irsa_services":{"pods":0,"services":{}}`)
	})
}
