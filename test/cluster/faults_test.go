package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

// startWorkloads creates n workloads (runs <prefix>-00…) of alice and bob
// at once and returns their pod names.
func startWorkloads(ctx context.Context, prefix string, n int, sidecarEnv ...corev1.EnvVar) ([]string, error) {
	names := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := []string{"alice-token", "bob-token"}[i%2]
			p, err := workload(ctx, fmt.Sprintf("%s-%02d", prefix, i), token, sidecarEnv...)
			if err == nil {
				names[i] = p.Name
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return names, errors.Join(errs...)
}

// waitWorkloads waits for every workload and checks that each got the
// asset role.
func waitWorkloads(ctx context.Context, names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := waitWorkload(ctx, name)
			if err == nil && !strings.Contains(out, ":assumed-role/"+proxyRole+"/") {
				err = fmt.Errorf("%s: the SDK chain ended with:\n%s", name, out)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// missingSubjects lists the workloads whose subject the proxy role lacks.
func missingSubjects(names []string) ([]string, error) {
	return missingSubjectsIn(computeNS, names)
}

func deleteWorkloads(ctx context.Context, names []string) {
	for _, n := range names {
		_ = env.cs.CoreV1().Pods(computeNS).Delete(ctx, n, metav1.DeleteOptions{})
	}
}

// TestBrokerPodDeletedWhileWorkloadsStart: one broker pod is deleted while
// 50 workloads start; every workload gets its config and the proxy role's
// trust policy holds every live subject. A workload pod that is deleted
// then leaves the trust policy.
func TestBrokerPodDeletedWhileWorkloadsStart(t *testing.T) {
	ctx := testContext(t)
	mapOrg(t, ctx)
	brokers, err := env.cs.CoreV1().Pods(fieldNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=irsa-broker"})
	if err != nil || len(brokers.Items) == 0 {
		t.Fatalf("broker pods: %v", err)
	}
	victim := brokers.Items[0].Name
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		// While the workloads are being created and their sidecars call.
		done <- env.cs.CoreV1().Pods(fieldNS).Delete(ctx, victim, metav1.DeleteOptions{})
	}()
	names, err := startWorkloads(ctx, "storm", 50)
	t.Cleanup(func() { deleteWorkloads(context.Background(), names) })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("deleting broker pod %s: %v", victim, err)
	}
	if err := waitWorkloads(ctx, names); err != nil {
		printPods(fieldNS)
		t.Fatal(err)
	}
	figure("50 workloads with a broker pod deleted: all sidecars Ready, SDK chains answered", time.Since(start))
	if missing, err := missingSubjects(names); err != nil || len(missing) > 0 {
		t.Fatalf("subjects missing from %s: %v %v", proxyRole, missing, err)
	}

	// A workload that ends leaves the trust policy (the leader's clean-up).
	gone := names[0]
	if err := env.cs.CoreV1().Pods(computeNS).Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kubetest.Poll(ctx, time.Second, gone+"'s subject removed", func() (bool, error) {
		missing, err := missingSubjects([]string{gone})
		return len(missing) == 1, kubetest.Retry(err)
	}); err != nil {
		t.Fatal(err)
	}
	if missing, err := missingSubjects(names[1:]); err != nil || len(missing) > 0 {
		t.Fatalf("clean-up took live subjects too: %v %v", missing, err)
	}
}

// TestRollingUpdateWhileWorkloadsRefresh: the Deployment rolls to another
// image tag while sidecars refresh every few seconds and new workloads
// start; no sidecar stops being Ready, every new workload gets its config,
// and no subject is lost.
func TestRollingUpdateWhileWorkloadsRefresh(t *testing.T) {
	ctx := testContext(t)
	mapOrg(t, ctx)
	refresh := corev1.EnvVar{Name: "IRSA_REFRESH_INTERVAL", Value: "2s"}
	before, err := startWorkloads(ctx, "roll-a", 10, refresh)
	t.Cleanup(func() { deleteWorkloads(context.Background(), before) })
	if err != nil {
		t.Fatal(err)
	}
	if err := waitWorkloads(ctx, before); err != nil {
		t.Fatal(err)
	}
	// Watch the refreshing sidecars through the roll.
	wctx, stopWatch := context.WithCancel(ctx)
	notReady := make(chan string, 100)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchSidecars(wctx, before, notReady)
	}()

	tag := "dev"
	if env.version == "dev" {
		t.Fatal("the images have only one tag: nothing to roll to")
	}
	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"irsa-broker","image":"irsa-broker:%s"}]}}}}`, tag)
	if _, err := env.cs.AppsV1().Deployments(fieldNS).Patch(ctx, brokerDeployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	during, err := startWorkloads(ctx, "roll-b", 10, refresh)
	t.Cleanup(func() { deleteWorkloads(context.Background(), during) })
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDeployment(ctx, tag); err != nil {
		printPods(fieldNS)
		t.Fatal(err)
	}
	if err := waitWorkloads(ctx, during); err != nil {
		t.Fatal(err)
	}
	figure("rolling update to a new tag with 20 refreshing workloads", time.Since(start))
	// The refreshing sidecars went on mapping through the new replicas.
	if err := kubetest.Poll(ctx, time.Second, "every refreshing workload mapped by a new replica", func() (bool, error) {
		seen, err := runsMappedBy(ctx, "irsa-broker:"+tag)
		if err != nil {
			return false, kubetest.Retry(err)
		}
		var missing []string
		for _, n := range before {
			if !seen[strings.TrimPrefix(n, "run-")] {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0, kubetest.Retry(fmt.Errorf("not yet mapped by a new replica: %v", missing))
	}); err != nil {
		t.Fatal(err)
	}
	stopWatch()
	<-watchDone
	close(notReady)
	for n := range notReady {
		t.Errorf("sidecar of %s stopped being Ready during the roll", n)
	}
	if missing, err := missingSubjects(append(before, during...)); err != nil || len(missing) > 0 {
		t.Fatalf("subjects missing after the roll: %v %v", missing, err)
	}
}

// watchSidecars reports every pod of names whose sidecar turns not Ready.
func watchSidecars(ctx context.Context, names []string, notReady chan<- string) {
	w, err := env.cs.CoreV1().Pods(computeNS).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		notReady <- "(watch failed: " + err.Error() + ")"
		return
	}
	defer w.Stop()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || !want[p.Name] || p.DeletionTimestamp != nil {
				continue
			}
			for _, s := range p.Status.ContainerStatuses {
				if s.Name == sidecarContainer && !s.Ready {
					notReady <- p.Name
				}
			}
		}
	}
}

// runsMappedBy lists the run ids that the broker pods running image mapped
// successfully, from their request logs.
func runsMappedBy(ctx context.Context, image string) (map[string]bool, error) {
	pods, err := env.cs.CoreV1().Pods(fieldNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=irsa-broker"})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range pods.Items {
		if p.Spec.Containers[0].Image != image || p.DeletionTimestamp != nil {
			continue
		}
		out, err := env.cs.CoreV1().Pods(fieldNS).GetLogs(p.Name, &corev1.PodLogOptions{Container: "irsa-broker"}).DoRaw(ctx)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(out), "\n") {
			var rec struct {
				Message string `json:"@message"`
				RunID   string `json:"run_id"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Message == "mapped workload" {
				seen[rec.RunID] = true
			}
		}
	}
	return seen, nil
}
