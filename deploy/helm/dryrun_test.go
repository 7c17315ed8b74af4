package helm

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/irsa-broker/irsa-broker/test/clustertest"
	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

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
	if err := clustertest.InstallCRDs(ctx, cp.Config, clustertest.ThirdPartyCRDs...); err != nil {
		t.Fatal(err)
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
