package cluster

import (
	"context"
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

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/test/domsed"
	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

// workload creates the pod Domino would create for a run started by the
// user of token, shaped by the shipped Mutation: Domino's labels and its API
// proxy on localhost:8899, a "run" container that asks the AWS SDK's own
// chain who it is once the sidecar has written the config, then the
// Mutation's sidecar, volumes, mounts and environment. The test's only
// additions after the Mutation: the images' tag, and AWS's endpoint (the
// simulator).
func workload(ctx context.Context, runID, token string, sidecarEnv ...corev1.EnvVar) (*corev1.Pod, error) {
	m, err := shippedMutation()
	if err != nil {
		return nil, err
	}
	return workloadIn(ctx, computeNS, []domsed.Mutation{m}, runID, token, sidecarEnv...)
}

// workloadIn is workload in namespace ns, shaped by mutations.
func workloadIn(ctx context.Context, ns string, mutations []domsed.Mutation, runID, token string, sidecarEnv ...corev1.EnvVar) (*corev1.Pod, error) {
	u := users[token]
	sa := brokerapi.RunPrefix + runID
	if _, err := env.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	never := corev1.PullNever
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "run-" + runID, Namespace: ns, Labels: map[string]string{
			brokerapi.LabelExecutionID:        runID,
			brokerapi.LabelStartingUser:       u.ID,
			brokerapi.LabelAppName:            brokerapi.RunPrefix + runID,
			"dominodatalab.com/workload-type": "Workspace",
		}},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			RestartPolicy:      corev1.RestartPolicyOnFailure,
			Containers: []corev1.Container{
				{Name: "run", Image: "irsa-sidecar:" + env.version, ImagePullPolicy: never,
					Command: []string{"/usr/local/bin/irsactl", "whoami", "-wait", "3m"},
					Env:     []corev1.EnvVar{{Name: "AWS_PROFILE", Value: proxyRole}}},
				{Name: "domino-api-proxy", Image: "domino-proxy:" + env.version, ImagePullPolicy: never,
					Env: []corev1.EnvVar{{Name: "DOMINO_TOKEN", Value: token}}},
			},
		},
	}
	for _, m := range mutations {
		if err := m.Apply(pod); err != nil {
			return nil, err
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if name, _, ok := strings.Cut(c.Image, ":"); ok && name == "irsa-sidecar" {
			c.Image, c.ImagePullPolicy = "irsa-sidecar:"+env.version, never
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: "AWS_ENDPOINT_URL_STS", Value: env.simURL})
		if c.Name == sidecarContainer {
			c.Env = append(c.Env, sidecarEnv...)
		}
	}
	return env.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
}

func shippedMutation() (domsed.Mutation, error) {
	b, err := os.ReadFile(filepath.Join(env.root, "deploy", "domsed", "mutation.yaml"))
	if err != nil {
		return domsed.Mutation{}, err
	}
	return domsed.Parse(b)
}

// waitWorkload waits until the pod's sidecar is Ready and its run container
// has printed the identity the SDK chain ended with; it returns that output.
func waitWorkload(ctx context.Context, name string) (string, error) {
	return waitWorkloadIn(ctx, computeNS, name)
}

// waitWorkloadIn is waitWorkload in namespace ns.
func waitWorkloadIn(ctx context.Context, ns, name string) (string, error) {
	var pod *corev1.Pod
	err := kubetest.Poll(ctx, 500*time.Millisecond, "workload "+name+": sidecar Ready and run done", func() (bool, error) {
		p, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, kubetest.Retry(err)
		}
		pod = p
		var sidecarReady, runDone bool
		for _, s := range p.Status.ContainerStatuses {
			switch s.Name {
			case sidecarContainer:
				sidecarReady = s.Ready
			case "run":
				if t := s.State.Terminated; t != nil {
					if t.ExitCode != 0 {
						return false, fmt.Errorf("run container exited %d: %s", t.ExitCode, t.Message)
					}
					runDone = true
				}
			}
		}
		return sidecarReady && runDone, kubetest.Retry(fmt.Errorf("phase %s, containers %s", p.Status.Phase, containerStates(p)))
	})
	if err != nil {
		return "", err
	}
	out, err := env.cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "run"}).DoRaw(ctx)
	return string(out), err
}

func containerStates(p *corev1.Pod) string {
	var s []string
	for _, c := range p.Status.ContainerStatuses {
		st := "waiting"
		switch {
		case c.State.Running != nil:
			st = "running"
		case c.State.Terminated != nil:
			st = fmt.Sprintf("terminated(%d)", c.State.Terminated.ExitCode)
		case c.State.Waiting != nil:
			st = "waiting(" + c.State.Waiting.Reason + ": " + c.State.Waiting.Message + ")"
		}
		s = append(s, fmt.Sprintf("%s=%s ready=%v restarts=%d", c.Name, st, c.Ready, c.RestartCount))
	}
	return strings.Join(s, ", ")
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d.Add(-30*time.Second))
	}
	t.Cleanup(cancel)
	return ctx
}

// mapOrg maps the example org to the proxy and asset roles through the
// broker's legacy admin API (once).
func mapOrg(t *testing.T, ctx context.Context) {
	t.Helper()
	body := fmt.Sprintf(`{"domino_org":"irsa-iamrole-list-bucket","iam_role_arn":%q,"proxy_iam_role_arn":%q}`, env.assetARN, env.proxyARN)
	code, out, err := adminCall(ctx, "POST", brokerapi.PathUpdateMapping, body)
	if err != nil || code != 200 {
		t.Fatalf("update_role_mapping: %d %s %v", code, out, err)
	}
}

// TestWorkloadGetsItsRole: a workload pod shaped by the shipped Mutation
// maps through the Service with the mounted CA, verifies through STS with
// the token the kubelet projected, turns Ready, and the AWS SDK's chain in
// its run container ends with the asset role.
func TestWorkloadGetsItsRole(t *testing.T) {
	ctx := testContext(t)
	mapOrg(t, ctx)
	start := time.Now()
	if _, err := workload(ctx, "first", "alice-token"); err != nil {
		t.Fatal(err)
	}
	out, err := waitWorkload(ctx, "run-first")
	if err != nil {
		printPods(computeNS)
		printPods(fieldNS)
		t.Fatal(err)
	}
	figure("first workload: pod created to sidecar Ready and SDK chain answered", time.Since(start))
	if want := "arn:aws:sts::" + assetsAccount + ":assumed-role/" + proxyRole + "/"; !strings.Contains(out, want) {
		t.Fatalf("run container printed:\n%s\nwant an identity of %s", out, want)
	}
	subs, err := proxySubjects()
	if err != nil {
		t.Fatal(err)
	}
	want := "system:serviceaccount:" + computeNS + ":run-first"
	if !slices.Contains(subs, want) {
		t.Fatalf("trust policy of %s holds %v, want %s", proxyRole, subs, want)
	}
	// The sidecar verified the broker with the CA the broker published in
	// the compute namespace: that CA, and nothing else of the secret.
	cm, err := env.cs.CoreV1().ConfigMaps(computeNS).Get(ctx, "irsa-ca-bundle", metav1.GetOptions{})
	if err != nil || len(cm.Data) != 1 || cm.Data["ca.crt"] != string(env.brokerCA) {
		t.Fatalf("CA bundle of %s: %v %v", computeNS, cm, err)
	}
}
