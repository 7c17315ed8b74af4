package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/test/clustertest"
	"github.com/irsa-broker/irsa-broker/test/domsed"
)

// The chart's release lives in namespaces of its own, beside the broker of
// deploy/kubernetes: two services editing the same proxy role, each
// cleaning up only its own compute namespace's subjects.
const (
	chartPlatform = "chart-platform"
	chartCompute  = "chart-compute"
	chartField    = "chart-field"
	chartRole     = "acme-irsa-svc-role" // the role of the v1.8 values file
)

// TestChartWithV18Values installs deploy/helm/irsa-broker with a v1.8
// values file, plus the image override and what this cluster needs, and a
// workload shaped by the chart's own Mutation (as installed) gets its role.
func TestChartWithV18Values(t *testing.T) {
	ctx := testContext(t)
	if err := clustertest.InstallCRDs(ctx, env.c.CP.Config, clustertest.ThirdPartyCRDs...); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, ns := range []string{chartPlatform, chartCompute, chartField} {
		if _, err := env.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// What cert-manager produces from the chart's Certificate: it does not
	// run here.
	ca, err := createCertificates(ctx, chartField, "irsa-certs", "irsa-svc")
	if err != nil {
		t.Fatal(err)
	}
	if err := addBrokerRole(chartRole, "system:serviceaccount:"+chartField+":irsa"); err != nil {
		t.Fatal(err)
	}
	// The mappings a v1.8 site has: a single-role org (the legacy value
	// format, as Python's json.dumps wrote it) and a multi-role one.
	single := fmt.Sprintf(`{"iam_role_arn": %q, "proxy_iam_role_arn": %q, "update_iam_role_trust_policy": true}`, env.assetARN, env.proxyARN)
	multi := fmt.Sprintf(`[{"iam_role_arn": %q, "proxy_iam_role_arn": %q, "update_iam_role_trust_policy": "false"}]`, env.assetARN, env.proxyARN)
	v18 := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "domino-org-iamrole-mapping", Namespace: chartField,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}, Annotations: map[string]string{"meta.helm.sh/release-name": "irsa-v18"}},
		Data: map[string]string{"irsa-iamrole-list-bucket": single, "irsa-iamrole-multi": multi}}
	if _, err := env.cs.CoreV1().ConfigMaps(chartField).Create(ctx, v18, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := helmInstall(ctx, t); err != nil {
		printPods(chartField)
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	figure("helm install --wait with a v1.8 values file (2 replicas Ready)", time.Since(start))

	// The new broker reads v1.8's mappings unchanged.
	code, got, err := adminCallIn(ctx, chartField, ca, "irsa-svc."+chartField, "GET", brokerapi.PathRoleMappings, "")
	if err != nil || code != 200 {
		t.Fatalf("role_mappings: %d %s %v", code, got, err)
	}
	var all struct {
		All map[string]json.RawMessage `json:"all_role_mappings"`
	}
	if err := json.Unmarshal([]byte(got), &all); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"irsa-iamrole-list-bucket": fmt.Sprintf(`{"iam_role_arn":%q,"proxy_iam_role_arn":%q,"update_iam_role_trust_policy":true}`, env.assetARN, env.proxyARN),
		"irsa-iamrole-multi":       fmt.Sprintf(`[{"iam_role_arn":%q,"proxy_iam_role_arn":%q,"update_iam_role_trust_policy":false}]`, env.assetARN, env.proxyARN),
	}
	for org, w := range want {
		if string(all.All[org]) != w {
			t.Errorf("%s after the switch: %s, want %s", org, all.All[org], w)
		}
	}
	if cm, err := env.cs.CoreV1().ConfigMaps(chartField).Get(ctx, "domino-org-iamrole-mapping", metav1.GetOptions{}); err != nil || cm.Data["irsa-iamrole-list-bucket"] != single {
		t.Errorf("the ConfigMap changed: %v %v", cm.Data, err)
	}
	mutations, err := installedMutations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workloadIn(ctx, chartCompute, mutations, "chart-1", "alice-token"); err != nil {
		t.Fatal(err)
	}
	out, err := waitWorkloadIn(ctx, chartCompute, "run-chart-1")
	if err != nil {
		printPods(chartCompute)
		printPods(chartField)
		t.Fatal(err)
	}
	if want := ":assumed-role/" + proxyRole + "/"; !strings.Contains(out, want) {
		t.Fatalf("the SDK chain ended with:\n%s", out)
	}
	if missing, err := missingSubjectsIn(chartCompute, []string{"run-chart-1"}); err != nil || len(missing) > 0 {
		t.Fatalf("subject missing: %v %v", missing, err)
	}
}

// helmInstall installs the chart as a site would: its v1.8 values file, the
// images of this project, and this cluster's settings.
func helmInstall(ctx context.Context, t *testing.T) (string, error) {
	const tokenDir = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	site := map[string]any{
		"env": map[string]any{
			"eks_service_role_name": chartRole,
			"oidc_provider":         env.provider,
			"replicas":              2,
			"namespace":             map[string]any{"platform": chartPlatform, "compute": chartCompute, "field": chartField},
		},
		"image": map[string]any{"pullPolicy": "Never"},
		// Per-user service accounts need domsed's cloud identity, which
		// does not run here.
		"userbasedserviceaccounts": map[string]any{"enabled": false},
		"broker": map[string]any{
			// The one image override: this project's images (imported on the
			// node, so no registry), at the version built.
			"images":   map[string]any{"tag": env.version},
			"identity": map[string]any{"config": "host: " + env.dominoURL + "\ntimeout: 10s\n"},
			// The simulator is AWS; what EKS's pod-identity webhook injects.
			"extraEnv": []any{
				map[string]any{"name": "AWS_ENDPOINT_URL_IAM", "value": env.simURL},
				map[string]any{"name": "AWS_ENDPOINT_URL_STS", "value": env.simURL},
				map[string]any{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::" + eksAccount + ":role/" + chartRole},
				map[string]any{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": tokenDir + "/token"},
			},
			"extraVolumes": []any{map[string]any{"name": "aws-iam-token", "projected": map[string]any{"sources": []any{
				map[string]any{"serviceAccountToken": map[string]any{"audience": audience, "expirationSeconds": 86400, "path": "token"}}}}}},
			"extraVolumeMounts": []any{map[string]any{"name": "aws-iam-token", "mountPath": tokenDir, "readOnly": true}},
		},
	}
	b, _ := json.Marshal(site)
	siteFile := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(siteFile, b, 0o600); err != nil {
		return "", err
	}
	cmd, err := clustertest.HelmCommand(ctx, t.TempDir(), "install", "irsa", filepath.Join(env.root, "deploy", "helm", "irsa-broker"),
		"--kubeconfig", env.c.CP.Kubeconfig, "--namespace", chartField,
		"-f", filepath.Join(env.root, "deploy", "helm", "testdata", "v1.8-values.yaml"), "-f", siteFile,
		"--wait", "--timeout", "3m")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	return buf.String(), err
}

// installedMutations reads the chart's workload Mutation (the sidecar
// variant) back from the cluster.
func installedMutations(ctx context.Context) ([]domsed.Mutation, error) {
	dyn, err := dynamic.NewForConfig(env.c.CP.Config)
	if err != nil {
		return nil, err
	}
	gvr := schema.GroupVersionResource{Group: "apps.dominodatalab.com", Version: "v1alpha1", Resource: "mutations"}
	var out []domsed.Mutation
	for _, name := range []string{"irsa-sidecar"} {
		u, err := dyn.Resource(gvr).Namespace(chartPlatform).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		m, err := domsed.Parse(b)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// missingSubjectsIn lists the service accounts of ns whose subject the
// proxy role lacks.
func missingSubjectsIn(ns string, sas []string) ([]string, error) {
	subs, err := proxySubjects()
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, sa := range sas {
		if !slices.Contains(subs, "system:serviceaccount:"+ns+":"+sa) {
			missing = append(missing, sa)
		}
	}
	return missing, nil
}
