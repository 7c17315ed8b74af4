package helm

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crd is a permissive CustomResourceDefinition for a kind the chart uses
// whose operator does not run in tests (cert-manager, domsed, Istio,
// Prometheus operator): the API server then checks the objects' envelope.
func crd(group, version, kind, plural string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"kind": kind, "plural": plural},
			"versions": []any{map[string]any{"name": version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
}

// TestRenderedObjectsPassServerSideDryRun renders the chart with a v1.8
// values file and with every optional part on, and creates every object
// with dryRun=All on a real API server: schemas, defaults and validation
// of the server, not just YAML.
func TestRenderedObjectsPassServerSideDryRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, err := kubetest.Start(ctx, kubetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	cs, err := cp.Clientset(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*unstructured.Unstructured{
		crd("cert-manager.io", "v1", "Issuer", "issuers"),
		crd("cert-manager.io", "v1", "Certificate", "certificates"),
		crd("apps.dominodatalab.com", "v1alpha1", "Mutation", "mutations"),
		crd("security.istio.io", "v1beta1", "PeerAuthentication", "peerauthentications"),
		crd("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"),
	} {
		if _, err := dyn.Resource(crdResource).Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := kubetest.Poll(ctx, 100*time.Millisecond, c.GetName()+" established", func() (bool, error) {
			got, err := dyn.Resource(crdResource).Get(ctx, c.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, kubetest.Retry(err)
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, cond := range conds {
				if m, ok := cond.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"domino-platform", "domino-compute", "domino-field"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	for name, args := range map[string][]string{
		"v1.8 values": {"-f", "testdata/v1.8-values.yaml"},
		"everything on": {"-f", "testdata/v1.8-values.yaml", "--set", "istio.enabled=true,broker.serviceMonitor.enabled=true,env.govcloud=true,irsa_client_sidecar.enabled=false",
			"--set", "env.proxy.https_proxy=http://proxy:3128", "--set-string", "broker.policies.site\\.rego=package irsa.site"},
	} {
		objs := render(t, args...)
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, gvk, err)
			}
			opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
			if o.GetNamespace() == "" {
				_, err = dyn.Resource(m.Resource).Create(ctx, o, opts)
			} else {
				_, err = dyn.Resource(m.Resource).Namespace(o.GetNamespace()).Create(ctx, o, opts)
			}
			if err != nil {
				t.Errorf("%s: %s %s/%s: %v", name, gvk.Kind, o.GetNamespace(), o.GetName(), err)
			}
		}
		if len(objs) < 15 {
			t.Errorf("%s: only %d objects rendered", name, len(objs))
		}
	}
	// The dry-run is not a formality: an object the server would refuse is
	// refused here (an env entry with a misspelt field).
	bad := render(t, "-f", "testdata/v1.8-values.yaml", "--set", "broker.extraEnv[0].nmae=X")
	d := find(bad, "Deployment", "irsa")
	gvk := d.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dyn.Resource(m.Resource).Namespace(d.GetNamespace()).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	if err == nil || !strings.Contains(err.Error(), "nmae") {
		t.Errorf("a Deployment with an unknown env field passed the dry-run: %v", err)
	}
}
