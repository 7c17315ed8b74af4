package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

// deployBroker installs deploy/kubernetes as shipped (the chart rendered with
// deploy/kubernetes/values.yaml), with what an installer
// sets for its cluster (see docs/design/cluster-test.md): the image tag, the
// OIDC provider, the Domino host, the AWS endpoints (the simulator stands for
// AWS) and what EKS's pod-identity webhook injects for the broker's own
// role. It waits for three Ready replicas.
func deployBroker(ctx context.Context) (err error) {
	for _, ns := range []string{fieldNS, computeNS} {
		if _, err := env.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if env.brokerCA, err = createCertificates(ctx, fieldNS, "irsa-certs", "irsa-svc"); err != nil {
		return err
	}
	// The node is in Domino's platform node pool, where v1.8 (and the
	// chart by default) schedules the broker.
	patch := []byte(`{"metadata":{"labels":{"dominodatalab.com/node-pool":"platform"}}}`)
	if _, err := env.cs.CoreV1().Nodes().Patch(ctx, env.c.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	for _, f := range []string{"rbac.yaml", "broker.yaml"} {
		objs, err := decodeManifests(filepath.Join(env.root, "deploy", "kubernetes", f))
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := create(ctx, o); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	if err := waitDeployment(ctx, env.version); err != nil {
		return err
	}
	// The replicas run as shipped: a read-only root filesystem, not root.
	pods, err := env.cs.CoreV1().Pods(fieldNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=irsa-broker"})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		sc := p.Spec.Containers[0].SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || p.Spec.SecurityContext.RunAsNonRoot == nil || !*p.Spec.SecurityContext.RunAsNonRoot {
			return fmt.Errorf("broker pod %s does not run read-only and non-root as shipped", p.Name)
		}
	}
	return nil
}

// decodeManifests reads a multi-document YAML file into typed objects.
func decodeManifests(path string) ([]runtime.Object, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, obj)
	}
}

// create creates one shipped object, with the installer's settings.
func create(ctx context.Context, obj runtime.Object) error {
	var err error
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		_, err = env.cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.Role:
		_, err = env.cs.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.RoleBinding:
		_, err = env.cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRole:
		_, err = env.cs.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = env.cs.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ConfigMap:
		if cfg, ok := o.Data["config.yaml"]; ok {
			o.Data["config.yaml"] = replaceLine(cfg, "host:", "host: "+env.dominoURL)
		}
		_, err = env.cs.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.Deployment:
		installBroker(&o.Spec.Template.Spec)
		_, err = env.cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = env.cs.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *policyv1.PodDisruptionBudget:
		_, err = env.cs.PolicyV1().PodDisruptionBudgets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *networkingv1.NetworkPolicy:
		_, err = env.cs.NetworkingV1().NetworkPolicies(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		return fmt.Errorf("the cluster test does not know how to install a %T", obj)
	}
	return err
}

// installBroker sets, in the broker's pod template, what an installer sets.
func installBroker(spec *corev1.PodSpec) {
	c := &spec.Containers[0]
	c.Image = "irsa-broker:" + env.version
	const tokenDir = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	for _, e := range []corev1.EnvVar{
		{Name: "IRSA_OIDC_PROVIDER", Value: env.provider},
		{Name: "OIDC_PROVIDER", Value: env.provider},
		// The simulator is AWS here.
		{Name: "AWS_ENDPOINT_URL_IAM", Value: env.simURL},
		{Name: "AWS_ENDPOINT_URL_STS", Value: env.simURL},
		// What EKS's pod-identity webhook injects for a ServiceAccount
		// annotated eks.amazonaws.com/role-arn.
		{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::" + eksAccount + ":role/" + brokerRole},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: tokenDir + "/token"},
		{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
		{Name: "AWS_REGION", Value: region},
	} {
		if i := slices.IndexFunc(c.Env, func(v corev1.EnvVar) bool { return v.Name == e.Name }); i >= 0 {
			c.Env[i] = e
		} else {
			c.Env = append(c.Env, e)
		}
	}
	expiry := int64(86400)
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: &expiry, Path: "token"}}},
	}}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "aws-iam-token", MountPath: tokenDir, ReadOnly: true})
}

func replaceLine(text, prefix, with string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			lines[i] = with
		}
	}
	return strings.Join(lines, "\n")
}

// waitDeployment waits until every replica of the broker's Deployment runs
// the image of tag and is Ready.
func waitDeployment(ctx context.Context, tag string) error {
	return kubetest.Poll(ctx, 500*time.Millisecond, brokerDeployment+" rolled out with tag "+tag, func() (bool, error) {
		d, err := env.cs.AppsV1().Deployments(fieldNS).Get(ctx, brokerDeployment, metav1.GetOptions{})
		if err != nil {
			return false, kubetest.Retry(err)
		}
		want := *d.Spec.Replicas
		s := d.Status
		done := d.Spec.Template.Spec.Containers[0].Image == "irsa-broker:"+tag && s.ObservedGeneration >= d.Generation &&
			s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want
		return done, kubetest.Retry(fmt.Errorf("replicas %d updated %d ready %d", s.Replicas, s.UpdatedReplicas, s.ReadyReplicas))
	})
}

// createCertificates writes what cert-manager's Certificate of service
// produces in secret name of namespace field (tls.crt, tls.key, ca.crt). It
// returns the CA. Nothing is copied to the compute namespace: the broker
// publishes the CA there itself.
func createCertificates(ctx context.Context, field, name, service string) ([]byte, error) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "irsa-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "irsa-svc"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{service, service + "." + field, service + "." + field + ".svc", service + "." + field + ".svc.cluster.local"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: field}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": crt, "tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), "ca.crt": caPEM}}
	_, err = env.cs.CoreV1().Secrets(field).Create(ctx, secret, metav1.CreateOptions{})
	return caPEM, err
}

// brokerClient calls a broker's pods directly (the host reaches pod IPs);
// it trusts ca and checks the Service's name.
func brokerClient(ca []byte, serverName string) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName},
	}}
}

// adminCall sends an admin request to one Ready broker pod of the manifests.
func adminCall(ctx context.Context, method, path, body string) (int, string, error) {
	return adminCallIn(ctx, fieldNS, env.brokerCA, "irsa-svc."+fieldNS, method, path, body)
}

// adminCallIn sends an admin request to one Ready broker pod of ns.
func adminCallIn(ctx context.Context, ns string, ca []byte, serverName, method, path, body string) (int, string, error) {
	pods, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=irsa-broker"})
	if err != nil {
		return 0, "", err
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+p.Status.PodIP+":6000"+path, strings.NewReader(body))
		req.Header.Set(brokerapi.HeaderAuthorization, "Bearer admin-token")
		resp, err := brokerClient(ca, serverName).Do(req)
		if err != nil {
			return 0, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), nil
	}
	return 0, "", errors.New("no Ready broker pod")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
