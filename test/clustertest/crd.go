package clustertest

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

// CRD names a namespaced custom resource whose operator does not run in
// tests (cert-manager, domsed, Istio, the Prometheus operator).
type CRD struct{ Group, Version, Kind, Plural string }

// ThirdPartyCRDs are the kinds the project's chart creates besides
// Kubernetes' own.
var ThirdPartyCRDs = []CRD{
	{"cert-manager.io", "v1", "Issuer", "issuers"},
	{"cert-manager.io", "v1", "Certificate", "certificates"},
	{"apps.dominodatalab.com", "v1alpha1", "Mutation", "mutations"},
	{"security.istio.io", "v1beta1", "PeerAuthentication", "peerauthentications"},
	{"monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"},
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs installs permissive definitions of crds (any content is
// accepted: the API server checks the objects' envelope) and waits until
// they are served.
func InstallCRDs(ctx context.Context, cfg *rest.Config, crds ...CRD) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, c := range crds {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": c.Plural + "." + c.Group},
			"spec": map[string]any{
				"group": c.Group, "scope": "Namespaced",
				"names": map[string]any{"kind": c.Kind, "plural": c.Plural},
				"versions": []any{map[string]any{"name": c.Version, "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
			},
		}}
		if _, err := dyn.Resource(crdResource).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return err
		}
		if err := kubetest.Poll(ctx, 100*time.Millisecond, obj.GetName()+" established", func() (bool, error) {
			got, err := dyn.Resource(crdResource).Get(ctx, obj.GetName(), metav1.GetOptions{})
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
			return err
		}
	}
	return nil
}
