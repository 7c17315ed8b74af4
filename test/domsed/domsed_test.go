package domsed

import (
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func shipped(t *testing.T) Mutation {
	t.Helper()
	b, err := os.ReadFile("../../deploy/domsed/mutation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func pod(l map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "run"}}}}
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestShippedMutationShapesAWorkspace(t *testing.T) {
	p := pod(map[string]string{"dominodatalab.com/workload-type": "Workspace"})
	if err := shipped(t).Apply(p); err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Containers) != 2 || p.Spec.Containers[1].Name != "aws-config-file-generator" {
		t.Fatalf("containers %v, want run + aws-config-file-generator (v1.8's name)", p.Spec.Containers)
	}
	for _, c := range p.Spec.Containers {
		// The later rule's env reaches the container an earlier rule inserted.
		if v, ok := env(c, "DOMINO_IRSA_ENDPOINT"); !ok || !strings.HasPrefix(v, "https://irsa-svc.domino-field/") {
			t.Errorf("%s: DOMINO_IRSA_ENDPOINT = %q", c.Name, v)
		}
	}
	run := p.Spec.Containers[0]
	if !slices.ContainsFunc(run.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/var/run/.aws" }) {
		t.Errorf("run lacks the AWS config mount: %v", run.VolumeMounts)
	}
	// v1.8's four volumes, and the broker's CA.
	var volumes []string
	for _, v := range p.Spec.Volumes {
		volumes = append(volumes, v.Name)
	}
	slices.Sort(volumes)
	if want := []string{"aws-config-file", "aws-user-token", "irsa-logs", "irsa-ssl-certs", "podinfo"}; !slices.Equal(volumes, want) {
		t.Errorf("volumes %v, want %v", volumes, want)
	}
}

func TestSelectorsAndBuilds(t *testing.T) {
	worker := pod(map[string]string{"app.kubernetes.io/name": "spark", "app.kubernetes.io/component": "worker"})
	if err := shipped(t).Apply(worker); err != nil {
		t.Fatal(err)
	}
	if worker.Labels["dominodatalab.com/irsa-workload-type"] != "cluster-worker" || len(worker.Spec.Containers) != 1 {
		t.Errorf("spark pod: labels %v, %d containers", worker.Labels, len(worker.Spec.Containers))
	}
	build := pod(map[string]string{"app.kubernetes.io/name": "spark", "dominodatalab.com/workload-type": "ImageBuild"})
	if err := shipped(t).Apply(build); err != nil {
		t.Fatal(err)
	}
	if _, ok := build.Labels["dominodatalab.com/irsa-workload-type"]; ok {
		t.Error("a build pod was mutated by a rule with matchBuilds: false")
	}
	other := pod(map[string]string{"dominodatalab.com/workload-type": "App"})
	if err := shipped(t).Apply(other); err != nil || len(other.Spec.Containers) != 1 || len(other.Spec.Volumes) != 0 {
		t.Errorf("an App pod was mutated: %v %+v", err, other.Spec)
	}
}

func TestRefusesWhatItDoesNotKnow(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown operation": "apiVersion: apps.dominodatalab.com/v1alpha1\nkind: Mutation\nrules:\n- modifyAnnotation: {key: x}\n",
		"not a mutation":    "apiVersion: v1\nkind: ConfigMap\n",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	m := Mutation{Rules: []Rule{{InsertContainer: &InsertContainer{ContainerType: "sidecar", Spec: corev1.Container{Name: "x"}}}}}
	if err := m.Apply(pod(nil)); err == nil {
		t.Error("unknown containerType accepted")
	}
	sc := Mutation{Rules: []Rule{{ModifySecurityContext: &ModifySecurityContext{Context: corev1.PodSecurityContext{FSGroup: ptr(int64(12574))}}}}}
	p := pod(nil)
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000))}
	if err := sc.Apply(p); err != nil || *p.Spec.SecurityContext.FSGroup != 12574 || *p.Spec.SecurityContext.RunAsUser != 1000 {
		t.Errorf("modifySecurityContext: %v %+v", err, p.Spec.SecurityContext)
	}
	cwi := Mutation{Rules: []Rule{{CloudWorkloadIdentity: &CloudWorkloadIdentity{CloudType: "aws"}}}}
	if err := cwi.Apply(pod(nil)); err == nil {
		t.Error("cloudWorkloadIdentity applied without knowing the user")
	}
	dup := Mutation{Rules: []Rule{{InsertVolumes: []corev1.Volume{{Name: "v"}}}, {InsertVolumes: []corev1.Volume{{Name: "v"}}}}}
	if err := dup.Apply(pod(nil)); err == nil {
		t.Error("a second volume of the same name accepted")
	}
}

func ptr[T any](v T) *T { return &v }
