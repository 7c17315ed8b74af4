package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-broker/irsa-broker/core/kube"
)

// TestMapThenSDKChain: the sidecar's request with the pod's real projected
// token maps the run; the SDK's own credential chain, through the simulator
// verifying the token against the API server's JWKS, becomes the asset
// role. Another user, and another pod's token, are refused. Deleting the
// pod takes the subject out again.
func TestMapThenSDKChain(t *testing.T) {
	ctx := context.Background()
	pod := runPod(t, computeNS, "chain1", "u-alice")
	other := runPod(t, computeNS, "chain2", "u-alice")
	defer deletePod(t, other)
	tok := podToken(t, pod)
	sub := subject(computeNS, "run-chain1")

	body := mapSeen(t, env.main, "alice-token", "chain1", tok)
	if !strings.Contains(body, "role_arn="+env.assetARNs[0]) || !strings.Contains(body, "web_identity_token_file = "+env.tokenFile) {
		t.Fatalf("config:\n%s", body)
	}
	if !hasSubject(t, 0, sub) {
		t.Fatalf("subject %s not in the trust policy: %v", sub, trustSubjects(t, 0))
	}

	// The SDK chain, exactly as a notebook in the pod would run it.
	if err := os.WriteFile(env.tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ENDPOINT_URL_STS", env.simURL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithSharedConfigProfile(env.roleNames[0]))
	if err != nil {
		t.Fatal(err)
	}
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("SDK chain: %v", err)
	}
	if arn := aws.ToString(who.Arn); !strings.HasPrefix(arn, fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/", assetsAccount, env.roleNames[0])) {
		t.Fatalf("SDK chain ended as %s, not the asset role", arn)
	}

	// Bob is in the same org but did not start the run.
	if code, body := mapRun(t, env.main, "bob-token", "chain1", ""); code != 403 && code != 404 {
		t.Fatalf("another user mapped the run: %d %s", code, body)
	}
	// Alice's other pod's token does not name chain1's pod.
	if code, body := mapRun(t, env.main, "alice-token", "chain1", podToken(t, other)); code != 403 || !strings.Contains(body, "pod_token_mismatch") {
		t.Fatalf("another pod's token: %d %s", code, body)
	}
	// A token for another audience is refused by TokenReview.
	if code, body := mapRun(t, env.main, "alice-token", "chain1", "not-a-token"); code != 403 || !strings.Contains(body, "pod_token_invalid") {
		t.Fatalf("bad token: %d %s", code, body)
	}

	// The trust change is an Event on the pod.
	eventually(t, "TrustPolicySubjectAdded event", func() bool {
		evs, err := env.cs.CoreV1().Events(computeNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Reason == kube.ReasonTrustAdded && strings.Contains(e.Message, sub) && strings.Contains(e.Message, "u-alice") {
				return true
			}
		}
		return false
	})

	deletePod(t, pod)
	eventually(t, "subject removed after pod deletion", func() bool { return !hasSubject(t, 0, sub) })
	// The pod's token died with it.
	if code, _ := mapRun(t, env.main, "alice-token", "chain1", tok); code != 404 && code != 403 {
		t.Fatalf("map after the pod is gone: %d", code)
	}
}

// TestRequirePodToken: with --require-pod-token a stolen user token alone
// cannot map a run.
func TestRequirePodToken(t *testing.T) {
	b := startTestBroker(t, "strict", "--require-pod-token", "--leader-election=false", "--cleanup-interval=0", "--compute-namespace", "restart-compute")
	pod := runPod(t, "restart-compute", "strict1", "u-alice")
	defer deletePod(t, pod)
	if code, body := mapRun(t, b, "alice-token", "strict1", ""); code != 403 || !strings.Contains(body, "pod_token_required") {
		t.Fatalf("without pod token: %d %s", code, body)
	}
	mapSeen(t, b, "alice-token", "strict1", podToken(t, pod))
}

// TestReplicasLoseNoSubject: 3 replicas, 300 concurrent map requests over
// 30 runs and 3 roles; every subject ends up in every role.
func TestReplicasLoseNoSubject(t *testing.T) {
	replicas := []*brokerProc{env.main, startTestBroker(t, "replica-2"), startTestBroker(t, "replica-3")}
	const runs, requests = 30, 300
	var pods []*corev1.Pod
	for i := range runs {
		pods = append(pods, runPod(t, computeNS, fmt.Sprintf("conc%02d", i), "u-carol"))
	}
	defer func() {
		for _, p := range pods {
			deletePod(t, p)
		}
	}()
	// IAM latency widens the read-modify-write window in which unserialized
	// writers would overwrite each other (with --trust-lock=none this test
	// loses subjects).
	for _, a := range []string{"GetRole", "UpdateAssumeRolePolicy"} {
		env.sim.SetLatency(a, 15*time.Millisecond)
		defer env.sim.SetLatency(a, 0)
	}
	before := env.sim.Calls()["UpdateAssumeRolePolicy"]
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan string, requests)
	sem := make(chan struct{}, 100)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// A run's requests come together to one replica (runs spread over
			// all), so a later write that drops its subject is not healed by
			// a repeat.
			k := i / (requests / runs)
			run := fmt.Sprintf("conc%02d", k)
			code, body := mapRun(t, replicas[k%len(replicas)], "carol-token", run, "")
			if code != 200 || strings.Count(body, "[profile ") != 2*nRoles {
				errs <- fmt.Sprintf("%s: %d %s", run, code, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	writes := env.sim.Calls()["UpdateAssumeRolePolicy"] - before
	t.Logf("%d maps over %d replicas in %s; %d trust-policy writes", requests, len(replicas), time.Since(start).Round(time.Millisecond), writes)
	for r := range nRoles {
		have := map[string]bool{}
		for _, s := range trustSubjects(t, r) {
			have[s] = true
		}
		for i := range runs {
			if s := subject(computeNS, fmt.Sprintf("run-conc%02d", i)); !have[s] {
				t.Errorf("role %d lost %s", r, s)
			}
		}
	}
	if writes >= requests*nRoles {
		t.Errorf("%d writes for %d requests × %d roles: no coalescing", writes, requests, nRoles)
	}
}

// TestMappingCRUDInConfigMap: the admin API's writes land in the legacy
// ConfigMap, in the legacy value format.
func TestMappingCRUDInConfigMap(t *testing.T) {
	ctx := context.Background()
	url := env.main.url
	pair := map[string]any{"domino_org": "crud-org", "iam_role_arn": env.assetARNs[1], "proxy_iam_role_arn": env.roleARNs[1], "update_iam_role_trust_policy": "false"}
	if code, body := call(t, http.MethodPost, url+"/update_role_mapping", "alice-token", pair); code != 403 {
		t.Fatalf("non-admin wrote a mapping: %d %s", code, body)
	}
	if code, body := call(t, http.MethodPost, url+"/update_role_mapping", "admin-token", pair); code != 200 {
		t.Fatalf("update_role_mapping: %d %s", code, body)
	}
	cmValue := func(key string) (string, bool) {
		cm, err := env.cs.CoreV1().ConfigMaps(fieldNS).Get(ctx, "domino-org-iamrole-mapping", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := cm.Data[key]
		return v, ok
	}
	v, ok := cmValue("crud-org")
	var single map[string]any
	if !ok || json.Unmarshal([]byte(v), &single) != nil || single["iam_role_arn"] != env.assetARNs[1] || single["update_iam_role_trust_policy"] != false {
		t.Fatalf("ConfigMap value %q", v)
	}
	multi := map[string]any{"domino_org": "crud-multi", "role_data": []map[string]any{
		{"iam_role_arn": env.assetARNs[0], "proxy_iam_role_arn": env.roleARNs[0]},
		{"iam_role_arn": env.assetARNs[2], "proxy_iam_role_arn": env.roleARNs[2]},
	}}
	if code, body := call(t, http.MethodPost, url+"/update_multirole_mapping", "admin-token", multi); code != 200 {
		t.Fatalf("update_multirole_mapping: %d %s", code, body)
	}
	v, _ = cmValue("crud-multi")
	var list []map[string]any
	if json.Unmarshal([]byte(v), &list) != nil || len(list) != 2 {
		t.Fatalf("multi-role ConfigMap value %q", v)
	}
	code, body := call(t, http.MethodGet, url+"/role_mappings", "admin-token", nil)
	if code != 200 || !strings.Contains(body, "crud-org") || !strings.Contains(body, "crud-multi") {
		t.Fatalf("role_mappings: %d %s", code, body)
	}
	for _, org := range []string{"crud-org", "crud-multi"} {
		if code, body := call(t, http.MethodDelete, url+"/delete_role_mapping", "admin-token", map[string]string{"domino_org": org}); code != 200 {
			t.Fatalf("delete %s: %d %s", org, code, body)
		}
		if _, ok := cmValue(org); ok {
			t.Fatalf("%s still in the ConfigMap", org)
		}
	}
}

// TestServiceAccountEndpoint: /service_account creates managed service
// accounts and deletes only those.
func TestServiceAccountEndpoint(t *testing.T) {
	ctx := context.Background()
	url := env.main.url + "/service_account"
	sas := env.cs.CoreV1().ServiceAccounts(computeNS)
	if _, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "not-ours"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if code, body := call(t, http.MethodPost, url, "alice-token", map[string]string{"service_account_name": "user-dave"}); code != 403 {
		t.Fatalf("non-admin: %d %s", code, body)
	}
	if code, body := call(t, http.MethodPost, url, "admin-token", map[string]string{"service_account_name": "Bad*Name"}); code != 400 {
		t.Fatalf("invalid name: %d %s", code, body)
	}
	if code, body := call(t, http.MethodPost, url, "admin-token", map[string]string{"service_account_name": "user-dave"}); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	sa, err := sas.Get(ctx, "user-dave", metav1.GetOptions{})
	if err != nil || sa.Labels[kube.LabelManagedBy] != kube.ManagedBy {
		t.Fatalf("created %+v %v", sa, err)
	}
	if code, body := call(t, http.MethodDelete, url, "admin-token", map[string]string{"service_account_name": "not-ours"}); code != 409 {
		t.Fatalf("deleting an unmanaged service account: %d %s", code, body)
	}
	if _, err := sas.Get(ctx, "not-ours", metav1.GetOptions{}); err != nil {
		t.Fatalf("unmanaged service account gone: %v", err)
	}
	if code, body := call(t, http.MethodDelete, url, "admin-token", map[string]string{"service_account_name": "user-dave"}); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := sas.Get(ctx, "user-dave", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("still there: %v", err)
	}
	if code, body := call(t, http.MethodDelete, url, "admin-token", map[string]string{"service_account_name": "user-dave"}); code != 404 {
		t.Fatalf("delete again: %d %s", code, body)
	}
}

// TestRestartRebuildsState: a broker that was down while a run ended takes
// its subject out when it starts (full reconcile from Kubernetes and IAM),
// and serves runs it never saw from its fresh cache.
func TestRestartRebuildsState(t *testing.T) {
	const ns = "restart-compute"
	args := []string{"--compute-namespace", ns, "--leader-election=false", "--cleanup-interval=0"}
	ctx, cancel := testContext(t)
	defer cancel()
	b, err := startBroker(ctx, "restart-1", args...)
	if err != nil {
		t.Fatal(err)
	}
	old := runPod(t, ns, "rs-old", "u-alice")
	func() {
		defer b.stop()
		mapSeen(t, b, "alice-token", "rs-old", "")
	}()
	sub := subject(ns, "run-rs-old")
	deletePod(t, old)
	if !hasSubject(t, 0, sub) {
		t.Fatal("subject removed although no broker watched this namespace")
	}
	fresh := runPod(t, ns, "rs-new", "u-alice")
	defer deletePod(t, fresh)

	b2 := startTestBroker(t, "restart-2", args...)
	eventually(t, "stale subject removed after restart", func() bool { return !hasSubject(t, 0, sub) })
	// It was the new broker's start-up reconcile that took it out (no broker
	// saw the pod go: a removal on the pod's deletion would say pod-gone).
	eventually(t, "restart-2 logging the reconcile's removal of "+sub, func() bool {
		return b2.logged("trust policy changed", "op", "remove", "cause", "reconcile", "role", env.roleARNs[0], "subject", sub)
	})
	if code, body := mapRun(t, b2, "alice-token", "rs-new", podToken(t, fresh)); code != 200 {
		t.Fatalf("map after restart: %d %s", code, body)
	}
	if !hasSubject(t, 0, subject(ns, "run-rs-new")) {
		t.Fatal("new subject missing")
	}
}

// TestPerUserServiceAccounts: the subject is the user's service account,
// shared by their runs, and stays while any of their pods lives.
func TestPerUserServiceAccounts(t *testing.T) {
	const ns = "restart-compute"
	b := startTestBroker(t, "per-user", "--compute-namespace", ns, "--per-user-service-accounts", "--leader-election=false", "--cleanup-interval=0")
	// Clean-up starts after readiness, and ignores pods that go before it
	// leads (its first reconcile covers them): wait for that reconcile, so
	// that the departures below go through the watch.
	eventually(t, "per-user's clean-up to lead and reconcile", func() bool { return b.logged("reconciled") })
	saName, err := kube.UserServiceAccountName("alice")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, http.MethodPost, b.url+"/service_account", "admin-token", map[string]string{"service_account_name": saName}); code != 200 {
		t.Fatalf("create %s: %d %s", saName, code, body)
	}
	p1 := createPod(t, ns, "pu-1-pod", "pu-1", "u-alice", saName)
	p2 := createPod(t, ns, "pu-2-pod", "pu-2", "u-alice", saName)
	for _, run := range []string{"pu-1", "pu-2"} {
		mapSeen(t, b, "alice-token", run, "")
	}
	sub := subject(ns, saName)
	if !hasSubject(t, 0, sub) {
		t.Fatal("per-user subject missing")
	}
	// A marker: carol's run in the same namespace, mapped, then ended after
	// p1. The broker handles pod departures in the order its watch delivers
	// them, so once carol's subject is gone, p1's departure has been handled.
	carolSA, err := kube.UserServiceAccountName("carol")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, http.MethodPost, b.url+"/service_account", "admin-token", map[string]string{"service_account_name": carolSA}); code != 200 {
		t.Fatalf("create %s: %d %s", carolSA, code, body)
	}
	marker := createPod(t, ns, "pu-marker-pod", "pu-marker", "u-carol", carolSA)
	mapSeen(t, b, "carol-token", "pu-marker", "")
	markerSub := subject(ns, carolSA)
	deletePod(t, p1)
	deletePod(t, marker)
	eventually(t, "the marker's subject removed (p1's departure handled before it)", func() bool {
		for r := range nRoles {
			if hasSubject(t, r, markerSub) {
				return false
			}
		}
		return true
	})
	if !hasSubject(t, 0, sub) {
		t.Fatal("subject removed while another pod of the user runs")
	}
	deletePod(t, p2)
	eventually(t, "per-user subject removed", func() bool { return !hasSubject(t, 0, sub) })
}
