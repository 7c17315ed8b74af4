// Package deploy_test checks the manifests against the code they deploy: the
// broker's arguments parse and validate, RBAC grants every call the broker
// makes, and the mutation gives the sidecar the environment it reads.
package deploy_test

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/test/clustertest"
)

// objects decodes every document of the manifests that client-go knows;
// others (cert-manager) must at least be YAML with a kind.
func objects(t *testing.T, paths ...string) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeDocs(t, p, b)...)
	}
	return out
}

// chartObjects renders the Helm chart with a v1.8 values file.
func chartObjects(t *testing.T) []runtime.Object {
	t.Helper()
	cmd, err := clustertest.HelmCommand(context.Background(), t.TempDir(),
		"template", "irsa", "helm/irsa-broker", "-f", "helm/testdata/v1.8-values.yaml", "--kube-version", "v1.32.4")
	if err != nil {
		t.Fatal(err)
	}
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return decodeDocs(t, "helm template", b)
}

func decodeDocs(t *testing.T, p string, b []byte) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for i, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(d, nil, nil)
		if err == nil {
			out = append(out, obj)
			continue
		}
		var u map[string]any
		if yerr := yaml.Unmarshal(d, &u); yerr != nil || u["kind"] == nil {
			t.Fatalf("%s document %d: %v", p, i, err)
		}
	}
	return out
}

// broker is the broker's Deployment, its container, the container's plain
// environment and the serve configuration its arguments and IRSA_* variables make.
func broker(t *testing.T) (*appsv1.Deployment, corev1.Container, map[string]string, config.Serve, *flag.FlagSet) {
	t.Helper()
	var dep *appsv1.Deployment
	for _, o := range objects(t, "kubernetes/broker.yaml") {
		if d, ok := o.(*appsv1.Deployment); ok {
			dep = d
		}
	}
	if dep == nil {
		t.Fatal("no Deployment")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Args[0] != "serve" {
		t.Fatalf("args %v", c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg config.Serve
	cfg.Register(fs)
	if err := config.Parse(fs, c.Args[1:], func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatalf("deployment args: %v", err)
	}
	return dep, c, env, cfg, fs
}

func TestBrokerArgumentsParseAndValidate(t *testing.T) {
	_, _, env, cfg, fs := broker(t)
	for k := range env {
		if strings.HasPrefix(k, "IRSA_") && !slices.ContainsFunc(flagNames(fs), func(n string) bool { return config.EnvName(n) == k }) {
			t.Errorf("env %s matches no flag", k)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("deployment configuration: %v", err)
	}
}

// TestReadOnlyRootHasAWritablePluginDir: the broker's root filesystem is
// read-only, so the identity plugin's unix sockets need a writable volume at
// --plugin-dir (its default, $TMPDIR or /tmp, is on the read-only root and
// the broker would not start).
func TestReadOnlyRootHasAWritablePluginDir(t *testing.T) {
	dep, c, env, cfg, _ := broker(t)
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Fatal("the broker's root filesystem must stay read-only")
	}
	dir := cfg.PluginDir
	if dir == "" {
		dir = cmp.Or(env["TMPDIR"], "/tmp")
	}
	// The deepest mount holding dir decides.
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		p := strings.TrimSuffix(m.MountPath, "/")
		if (dir == p || strings.HasPrefix(dir, p+"/")) && (mount == nil || len(p) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("the plugin directory %s is on the read-only root filesystem: mount an emptyDir there", dir)
	}
	i := slices.IndexFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if i < 0 {
		t.Fatalf("volume %q of mount %s is not defined", mount.Name, mount.MountPath)
	}
	v := dep.Spec.Template.Spec.Volumes[i]
	if mount.ReadOnly || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil) {
		t.Fatalf("the plugin directory %s is on volume %q, which is not writable (want an emptyDir mounted read-write)", dir, v.Name)
	}
}

func flagNames(fs *flag.FlagSet) []string {
	var n []string
	fs.VisitAll(func(f *flag.Flag) { n = append(n, f.Name) })
	return n
}

// TestRBACCoversTheBroker lists every Kubernetes call the broker makes.
// TestRBACCoversTheBroker: the manifests' RBAC and the chart's grant every
// call the broker makes.
func TestRBACCoversTheBroker(t *testing.T) {
	t.Run("manifests", func(t *testing.T) { checkRBAC(t, objects(t, "kubernetes/rbac.yaml"), "irsa") })
	t.Run("chart", func(t *testing.T) { checkRBAC(t, chartObjects(t), "irsa") })
}

func checkRBAC(t *testing.T, objs []runtime.Object, sa string) {
	type need struct{ ns, group, resource, verb string }
	needs := []need{
		{"domino-field", "", "configmaps", "get"}, {"domino-field", "", "configmaps", "list"}, {"domino-field", "", "configmaps", "watch"},
		{"domino-field", "", "configmaps", "create"}, {"domino-field", "", "configmaps", "update"},
		{"domino-field", "coordination.k8s.io", "leases", "get"}, {"domino-field", "coordination.k8s.io", "leases", "create"},
		{"domino-field", "coordination.k8s.io", "leases", "update"},
		{"domino-field", "", "events", "create"},
		{"domino-compute", "", "pods", "list"}, {"domino-compute", "", "pods", "watch"},
		{"domino-compute", "", "serviceaccounts", "get"}, {"domino-compute", "", "serviceaccounts", "create"},
		{"domino-compute", "", "serviceaccounts", "delete"}, {"domino-compute", "", "events", "create"},
		{"domino-compute", "", "configmaps", "get"}, {"domino-compute", "", "configmaps", "create"}, {"domino-compute", "", "configmaps", "update"},
		{"", "authentication.k8s.io", "tokenreviews", "create"},
	}
	rules := map[string][]rbacv1.PolicyRule{} // namespace ("" cluster) → rules bound to the broker
	roles := map[string][]rbacv1.PolicyRule{}
	var bindings []struct{ ns, role string }
	for _, o := range objs {
		switch v := o.(type) {
		case *rbacv1.Role:
			roles[v.Namespace+"/"+v.Name] = v.Rules
		case *rbacv1.ClusterRole:
			roles["/"+v.Name] = v.Rules
		case *rbacv1.RoleBinding:
			if v.Subjects[0].Name == sa {
				bindings = append(bindings, struct{ ns, role string }{v.Namespace, v.Namespace + "/" + v.RoleRef.Name})
			}
		case *rbacv1.ClusterRoleBinding:
			if v.Subjects[0].Name == sa {
				bindings = append(bindings, struct{ ns, role string }{"", "/" + v.RoleRef.Name})
			}
		}
	}
	for _, b := range bindings {
		rules[b.ns] = append(rules[b.ns], roles[b.role]...)
	}
	for _, n := range needs {
		ok := slices.ContainsFunc(rules[n.ns], func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, n.group) && slices.Contains(r.Resources, n.resource) && slices.Contains(r.Verbs, n.verb)
		})
		if !ok {
			t.Errorf("RBAC lacks %s %s/%s in namespace %q", n.verb, n.group, n.resource, n.ns)
		}
	}
}

// sidecarContainer is the sidecar's container name in v1.8's Mutation.
const sidecarContainer = "aws-config-file-generator"

// TestMutationGivesTheSidecarItsEnvironment: the mutation sets what the
// sidecar reads, and its probe is a subcommand the sidecar has.
func TestMutationGivesTheSidecarItsEnvironment(t *testing.T) {
	b, err := os.ReadFile("domsed/mutation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Kind  string `json:"kind"`
		Rules []struct {
			InsertContainer *struct {
				Spec struct {
					Name           string `json:"name"`
					ReadinessProbe struct {
						Exec struct {
							Command []string `json:"command"`
						} `json:"exec"`
					} `json:"readinessProbe"`
					Env []struct{ Name, Value string } `json:"env"`
				} `json:"spec"`
			} `json:"insertContainer"`
			ModifyEnv *struct {
				ContainerSelector []string                       `json:"containerSelector"`
				Env               []struct{ Name, Value string } `json:"env"`
			} `json:"modifyEnv"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil || m.Kind != "Mutation" {
		t.Fatalf("mutation: %v", err)
	}
	env := map[string]string{}
	var probe []string
	for _, r := range m.Rules {
		if r.InsertContainer != nil && r.InsertContainer.Spec.Name == sidecarContainer {
			probe = r.InsertContainer.Spec.ReadinessProbe.Exec.Command
			for _, e := range r.InsertContainer.Spec.Env {
				env[e.Name] = e.Value
			}
		}
		if r.ModifyEnv != nil && (len(r.ModifyEnv.ContainerSelector) == 0 || slices.Contains(r.ModifyEnv.ContainerSelector, sidecarContainer)) {
			for _, e := range r.ModifyEnv.Env {
				env[e.Name] = e.Value
			}
		}
	}
	for _, k := range []string{"DOMINO_IRSA_ENDPOINT", "DOMINO_API_PROXY", "POD_INFO_PATH", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "DOMINO_IRSA_SSL_CERT"} {
		if env[k] == "" {
			t.Errorf("the sidecar gets no %s", k)
		}
	}
	if len(probe) != 2 || probe[1] != "probe" {
		t.Errorf("readiness probe %v", probe)
	}
}

// The broker's serving secret holds its private key: a workload gets the CA
// to verify the broker (the ConfigMap the broker publishes), never a secret
// of the broker (docs/security.md).
func TestMutationGivesWorkloadsNoPrivateKey(t *testing.T) {
	b, err := os.ReadFile("domsed/mutation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Rules []struct {
			InsertVolumes []struct {
				Name      string                       `json:"name"`
				Secret    *struct{ SecretName string } `json:"secret"`
				ConfigMap *struct {
					Name  string `json:"name"`
					Items []struct {
						Key string `json:"key"`
					} `json:"items"`
				} `json:"configMap"`
			} `json:"insertVolumes"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var ca bool
	for _, r := range m.Rules {
		for _, v := range r.InsertVolumes {
			if v.Secret != nil {
				t.Errorf("volume %s mounts secret %s into workloads", v.Name, v.Secret.SecretName)
			}
			if v.ConfigMap != nil && v.ConfigMap.Name == "irsa-ca-bundle" {
				ca = len(v.ConfigMap.Items) == 1 && v.ConfigMap.Items[0].Key == "ca.crt"
			}
		}
	}
	if !ca {
		t.Fatal("no volume of the broker's CA bundle (ca.crt of ConfigMap irsa-ca-bundle): the test no longer reads the mutation")
	}
}
