package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/kube"
	"github.com/irsa-broker/irsa-broker/core/wire"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/static"
)

// capacityUser is the user of run i in the per-user columns: one of
// capacityUsers members of the benchmark's org.
func capacityUser(i int) static.User {
	u := i % capacityUsers
	return static.User{Token: fmt.Sprintf("cap-user-%03d-token", u), ID: fmt.Sprintf("cap%021d", u),
		Username: fmt.Sprintf("u%03d", u), Organizations: []string{poolOrg}}
}

// capacitySA is the service account run i runs as: its own (run-cap-NNNN),
// or with per-user service accounts its user's.
func capacitySA(i int, perUser bool) string {
	if !perUser {
		return fmt.Sprintf("%scap-%04d", brokerapi.RunPrefix, i)
	}
	sa, err := kube.UserServiceAccountName(capacityUser(i).Username)
	if err != nil {
		panic(err)
	}
	return sa
}

// perUserBroker builds serve's graph with --workloads=kubernetes and
// --per-user-service-accounts over the stack's IAM simulator and mapping
// store (the dev stack's own broker runs --workloads=caller, which refuses
// per-user service accounts). Kubernetes is client-go's fake API holding
// one running pod per run (capacityRuns), started by the run's user and run
// as that user's service account; the identity provider is the static one
// with the capacityUsers users. Writes are serialized in-process
// (--trust-lock=none), as on the dev stack. It returns the broker's URL
// once the pod cache is synced and the start-up reconcile is done, so the
// burst's IAM counts are the maps' only.
func perUserBroker(b *testing.B, st *devstack.Stack) string {
	b.Helper()
	ns := "domino-compute"
	pods := make([]runtime.Object, 0, capacityRuns)
	for i := range capacityRuns {
		run := fmt.Sprintf("cap-%04d", i)
		pods = append(pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: run + "-pod", Namespace: ns, UID: types.UID("uid-" + run),
				Labels: map[string]string{brokerapi.LabelExecutionID: run, brokerapi.LabelStartingUser: capacityUser(i).ID}},
			Spec:   corev1.PodSpec{ServiceAccountName: capacitySA(i, true)},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		})
	}
	users := make([]static.User, capacityUsers)
	for u := range capacityUsers {
		users[u] = capacityUser(u)
	}
	raw, err := json.Marshal(static.File{Users: users})
	if err != nil {
		b.Fatal(err)
	}
	idp := static.New()
	if err := idp.Configure(context.Background(), raw); err != nil {
		b.Fatal(err)
	}

	cfg := config.Defaults()
	cfg.InsecureHTTP = true
	cfg.Workloads, cfg.PerUserServiceAccounts = "kubernetes", true
	cfg.ComputeNamespace = ns
	cfg.OIDCProvider = st.OIDCProvider
	cfg.AWSRegion, cfg.IAMEndpoint = devstack.Region, st.AWSURL
	cfg.TrustLock, cfg.LeaderElection, cfg.CleanupInterval = "none", false, 0
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	var reconciled flagWriter
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &reconciled})
	ctx, cancel := context.WithCancel(context.Background())
	br, err := wire.Build(ctx, cfg, wire.Edges{
		Kubernetes:     fake.NewClientset(pods...),
		Identity:       idp,
		IAMCredentials: credentials.NewStaticCredentialsProvider(st.AccessKeyID, st.SecretKey, ""),
		Mappings:       st.Mappings,
	}, log)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	srv := httptest.NewServer(br.Handler)
	b.Cleanup(func() { srv.Close(); cancel(); br.Close() })
	br.Run(ctx)
	polltest.Until(b, "the per-user broker's pod cache and start-up reconcile", func() bool {
		res, err := http.Get(srv.URL + brokerapi.PathReadyz)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK && reconciled.seen.Load()
	})
	return srv.URL
}

// flagWriter records whether the clean-up's "reconciled" line was logged.
type flagWriter struct{ seen atomic.Bool }

func (f *flagWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "reconciled") {
		f.seen.Store(true)
	}
	return len(p), nil
}
