package wire_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/wire"
	"github.com/irsa-broker/irsa-broker/examples"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/static"
)

const (
	computeNS = "domino-compute"
	aliceID   = "6441e3e0f5e0c93c5b6e4f01" // examples/dev-users.yaml
	role      = "acme-list-bucket-role"
)

// TestBuildKubernetes builds serve's graph in Kubernetes mode (as `serve
// --workloads=kubernetes`), with a fake API client for the cluster and the
// dev stack's IAM simulator for AWS, and follows one run through it: the
// pod cache makes the broker ready, a map adds the run's subject and
// records an Event, and the pod's end takes the subject out again (the
// cleaner). test/e2e runs the same graph as a process against a real
// kube-apiserver; this test proves the wiring at unit speed.
func TestBuildKubernetes(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	cs := fake.NewClientset(runPod("r1", aliceID))
	cfg := config.Defaults()
	cfg.InsecureHTTP = true
	cfg.Workloads = "kubernetes"
	cfg.ComputeNamespace = computeNS
	cfg.OIDCProvider = st.OIDCProvider
	cfg.AWSRegion, cfg.IAMEndpoint = devstack.Region, st.AWSURL
	cfg.LeaderElection = false
	cfg.CleanupInterval = 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	users := static.New()
	if err := users.Configure(context.Background(), examples.DevUsers); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := wire.Build(ctx, cfg, wire.Edges{
		Kubernetes:     cs,
		Identity:       users,
		IAMCredentials: credentials.NewStaticCredentialsProvider(st.AccessKeyID, st.SecretKey, ""),
		Mappings:       st.Mappings,
	}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b.Handler)
	defer srv.Close()

	if code, body := get(t, srv.URL+brokerapi.PathReadyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "workloads") {
		t.Fatalf("before Run: /readyz = %d %s, want 503 naming the unsynced pod cache", code, body)
	}
	b.Run(ctx)
	polltest.Until(t, "the pod cache to sync", func() bool { code, _ := get(t, srv.URL+brokerapi.PathReadyz); return code == http.StatusOK })

	req, _ := http.NewRequest(http.MethodPost, srv.URL+brokerapi.PathMap, strings.NewReader(`{"run_id":"r1"}`))
	req.Header.Set(brokerapi.HeaderAuthorization, "Bearer alice-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(text), "[profile "+role+"]") {
		t.Fatalf("map = %d\n%s", resp.StatusCode, text)
	}
	subject := "system:serviceaccount:" + computeNS + ":run-r1"
	if !strings.Contains(trustPolicy(t, st), subject) {
		t.Fatalf("subject %s not in the trust policy of %s", subject, role)
	}
	polltest.Until(t, "the trust Event on the pod", func() bool {
		evs, err := cs.CoreV1().Events(computeNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == "TrustPolicySubjectAdded" && e.InvolvedObject.Name == "r1-pod" {
				return true
			}
		}
		return false
	})

	if err := cs.CoreV1().Pods(computeNS).Delete(ctx, "r1-pod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the cleaner to take the subject out", func() bool { return !strings.Contains(trustPolicy(t, st), subject) })
}

// TestBuildRefusesConfigMapStoreWithoutKubernetes: the mapping ConfigMap
// needs a cluster; asking for it without one is a clear error, not a panic.
func TestBuildRefusesConfigMapStoreWithoutKubernetes(t *testing.T) {
	cfg := config.Defaults()
	cfg.Workloads, cfg.OIDCProvider, cfg.Kubeconfig = "caller", "oidc.example.com/id/X", t.TempDir()+"/missing-kubeconfig"
	_, err := wire.Build(context.Background(), cfg, wire.Edges{Identity: static.New()}, hclog.NewNullLogger())
	if err == nil || !strings.Contains(err.Error(), "kubernetes client configuration") {
		t.Fatalf("Build = %v, want the Kubernetes configuration error", err)
	}
}

func runPod(run, owner string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: run + "-pod", Namespace: computeNS, UID: types.UID("uid-" + run),
			Labels: map[string]string{brokerapi.LabelExecutionID: run, brokerapi.LabelStartingUser: owner}},
		Spec:   corev1.PodSpec{ServiceAccountName: brokerapi.RunPrefix + run},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func trustPolicy(t *testing.T, st *devstack.Stack) string {
	t.Helper()
	doc, err := st.Sim.TrustPolicy(devstack.EKSAccount, role)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
