// Package helm tests the chart deploy/helm/irsa-broker with the real helm
// (built by test/testenv/setup.sh --helm) and a real API server.
package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/test/clustertest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// helm runs the helm binary of the test environment.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	if args[0] == "template" {
		// The test cluster's version (helm built from source defaults to an old one).
		args = append(args, "--kube-version", "v1.32.4")
	}
	cmd, err := clustertest.HelmCommand(context.Background(), t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = filepath.Dir(self)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return string(b), errors.New(err.Error() + ": " + stderr.String())
	}
	return string(b), nil
}

const chart = "irsa-broker"

// render renders the chart with the given values files and --set flags.
func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", "irsa", chart}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return decode(t, out)
}

func decode(t *testing.T, text string) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := r.Decode(&m); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestLint(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", chart, "-f", "testdata/v1.8-values.yaml"); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

// A v1.8 values file renders, with v1.8's names, so the broker's IAM role
// trust and every client keep working.
func TestV18ValuesRender(t *testing.T) {
	objs := render(t, "-f", "testdata/v1.8-values.yaml")
	for _, want := range [][2]string{
		{"Deployment", "irsa"}, {"Service", "irsa-svc"}, {"ServiceAccount", "irsa"},
		{"Certificate", "irsa-certificate"}, {"NetworkPolicy", "irsa"}, {"Mutation", "irsa-sidecar"}, {"Mutation", "irsa-cloud-identity"},
	} {
		if find(objs, want[0], want[1]) == nil {
			t.Errorf("no %s %s rendered", want[0], want[1])
		}
	}
	sa := find(objs, "ServiceAccount", "irsa")
	if got := sa.GetAnnotations()["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::946429944765:role/acme-irsa-svc-role" {
		t.Errorf("role annotation %q", got)
	}
	// The mappings are not the release's: installing over v1.8's ConfigMap
	// works, and helm uninstall never deletes them.
	if find(objs, "ConfigMap", "domino-org-iamrole-mapping") != nil {
		t.Error("the chart owns the mapping ConfigMap")
	}
	d := find(objs, "Deployment", "irsa")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if c["image"] != "domino/field/irsa:v1.8.0-release" {
		t.Errorf("broker image %v: v1.8's <repository>/<serverContainer>:<serverAppVersion>", c["image"])
	}
	ro, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem")
	if !ro {
		t.Error("the broker does not run read-only")
	}
	if replicas, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(replicas) != "5" {
		t.Errorf("replicas %v, want v1.8's env.replicas", replicas)
	}
}

// TestLegacyGetShapeValue: broker.legacyGetShape reaches the broker's
// --legacy-get-shape (seed by default, v1.8 on request); other values are
// refused by the schema.
func TestLegacyGetShapeValue(t *testing.T) {
	for set, want := range map[string]string{"": "--legacy-get-shape=seed", "broker.legacyGetShape=v1.8": "--legacy-get-shape=v1.8"} {
		args := []string{"-f", "testdata/v1.8-values.yaml"}
		if set != "" {
			args = append(args, "--set", set)
		}
		d := find(render(t, args...), "Deployment", "irsa")
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if a := fmt.Sprint(containers[0].(map[string]any)["args"]); !strings.Contains(a, want) {
			t.Errorf("%q: args %s lack %s", set, a, want)
		}
	}
	if _, err := helm(t, "template", "irsa", chart, "-f", "testdata/v1.8-values.yaml", "--set", "broker.legacyGetShape=list"); err == nil || !strings.Contains(err.Error(), "legacyGetShape") {
		t.Errorf("legacyGetShape=list: %v", err)
	}
}

// A missing or wrong required value fails with the key's name.
func TestSchemaNamesTheKey(t *testing.T) {
	for key, set := range map[string][]string{
		"oidc_provider":   {"--set", "env.oidc_provider=https://oidc.example/id/X"},
		"aws_region":      {"--set", "env.aws_region=Oregon"},
		"eks_aws_account": {"--set", "env.eks_aws_account=12345"},
		// A value that would smuggle a flag into the broker's arguments.
		"plugin": {"--set", "broker.identity.plugin=domino --insecure-http"},
		"field":  {"--set", "env.namespace.field=Domino_Field"},
	} {
		args := append([]string{"template", "irsa", chart, "-f", "testdata/v1.8-values.yaml"}, set...)
		if _, err := helm(t, args...); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%v: err = %v, want one naming %s", set, err, key)
		}
	}
	if _, err := helm(t, "template", "irsa", chart); err == nil || !strings.Contains(err.Error(), "eks_aws_account") {
		t.Errorf("defaults without the site's values: err = %v, want one naming the required keys", err)
	}
}

// irsa_client_sidecar.enabled=false installs v1.8's env-and-volumes-only
// Mutation <name>: no container, the same environment.
func TestEnvOnlyVariant(t *testing.T) {
	objs := render(t, "-f", "testdata/v1.8-values.yaml", "--set", "irsa_client_sidecar.enabled=false")
	m := find(objs, "Mutation", "irsa")
	if m == nil || find(objs, "Mutation", "irsa-sidecar") != nil {
		t.Fatal("want Mutation irsa and no irsa-sidecar")
	}
	rules, _, _ := unstructured.NestedSlice(m.Object, "rules")
	var env bool
	for _, r := range rules {
		rule := r.(map[string]any)
		if _, ok := rule["insertContainer"]; ok {
			t.Error("the env-only variant inserts a container")
		}
		if _, ok := rule["modifyEnv"]; ok {
			env = true
		}
	}
	if !env {
		t.Error("the env-only variant sets no environment")
	}
}

// broker.identity.providers renders an --identity-providers file that the
// broker's own parser reads back, in order, and replaces the single form.
func TestIdentityProviders(t *testing.T) {
	objs := render(t, "-f", "testdata/v1.8-values.yaml", "--set-json", `broker.identity.providers=[`+
		`{"name":"domino","plugin":"domino","headers":["X-Domino-Api-Key"],"config":{"host":"http://nucleus-frontend.domino-platform:80"}},`+
		`{"name":"corp-oidc","plugin":"oidc","headers":["Authorization"],"config":"issuer: https://sso.example.com\naudiences: [irsa-broker]\n"}]`)
	cm := find(objs, "ConfigMap", "irsa-identity")
	file, _, _ := unstructured.NestedString(cm.Object, "data", "providers.yaml")
	ps, err := config.ParseIdentityProviders([]byte(file), "/etc/irsa/identity")
	if err != nil {
		t.Fatalf("providers.yaml %q: %v", file, err)
	}
	if len(ps) != 2 || ps[0].Name != "domino" || ps[1].Name != "corp-oidc" || ps[1].Headers[0] != "Authorization" ||
		!strings.Contains(string(ps[0].Config), "nucleus-frontend") || !strings.Contains(string(ps[1].Config), "sso.example.com") {
		t.Fatalf("providers read back: %+v", ps)
	}
	args := containerArgs(t, find(objs, "Deployment", "irsa"))
	if !slices.Contains(args, "--identity-providers=/etc/irsa/identity/providers.yaml") || slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--identity-plugin") || strings.HasPrefix(a, "--identity-config")
	}) {
		t.Fatalf("broker arguments: %v", args)
	}
	for _, bad := range []string{
		`[{"plugin":"oidc","name":"Bad Name"}]`,
		`[{"plugin":"oidc --policy-dir=/tmp"}]`,
		`[{"plugin":"domino","sha256":"abc"}]`,
		`[{"plugin":"domino","headers":["X-Api-Key: x"]}]`,
		`[{"name":"x"}]`,
		`[{"plugin":"domino","config_file":"/etc/passwd"}]`,
	} {
		if _, err := helm(t, "template", "irsa", chart, "-f", "testdata/v1.8-values.yaml", "--set-json", "broker.identity.providers="+bad); err == nil || !strings.Contains(err.Error(), "providers") {
			t.Errorf("providers %s: %v", bad, err)
		}
	}
}

func containerArgs(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	var out []string
	for _, a := range cs[0].(map[string]any)["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// One value points a v1.8 values file at this project's images:
// broker.images.registry (and .tag) win over v1.8's image.* keys, and a
// full reference wins over both.
func TestOneImageOverride(t *testing.T) {
	images := func(args ...string) []string {
		var out []string
		for _, o := range render(t, append([]string{"-f", "testdata/v1.8-values.yaml"}, args...)...) {
			if o.GetKind() == "Deployment" {
				cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				out = append(out, cs[0].(map[string]any)["image"].(string))
			}
			if o.GetKind() == "Mutation" {
				rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
				for _, r := range rules {
					if img, ok, _ := unstructured.NestedString(r.(map[string]any), "insertContainer", "spec", "image"); ok {
						out = append(out, img)
					}
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"domino/field/irsa:v1.8.0-release", "domino/field/irsa-client:v1.8.0-release"}},
		{[]string{"--set", "broker.images.registry=reg.example.com:5000/irsa/"}, []string{"reg.example.com:5000/irsa/irsa-broker:dev", "reg.example.com:5000/irsa/irsa-sidecar:dev"}},
		{[]string{"--set", "broker.images.tag=v2.0.1"}, []string{"irsa-broker:v2.0.1", "irsa-sidecar:v2.0.1"}},
		{[]string{"--set", "broker.images.registry=reg.example.com", "--set", "broker.images.sidecar=other/sidecar:1"}, []string{"reg.example.com/irsa-broker:dev", "other/sidecar:1"}},
	} {
		if got := images(c.args...); !slices.Equal(got, c.want) {
			t.Errorf("%v: images %v, want %v", c.args, got, c.want)
		}
	}
	for _, bad := range []string{"broker.images.registry=Reg Example", "broker.images.tag=-x", "broker.images.broker=a b"} {
		if _, err := helm(t, "template", "irsa", chart, "-f", "testdata/v1.8-values.yaml", "--set", bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
