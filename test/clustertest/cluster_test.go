package clustertest_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/test/clustertest"
)

// buildImages runs deploy/images/build.sh into a temporary directory.
func buildImages(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("bash", "../../deploy/images/build.sh").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("deploy/images/build.sh: %v\n%s", err, stderr)
	}
	return strings.Fields(string(out))
}

// TestClusterRunsPodsAndLeavesNothing starts the cluster, runs a pod on the
// node, and checks that Stop leaves no process, mount, cgroup, network
// namespace, link or iptables rule behind.
func TestClusterRunsPodsAndLeavesNothing(t *testing.T) {
	images := buildImages(t)
	ctx := context.Background()
	c, err := clustertest.Start(ctx, clustertest.Options{Images: images, PauseImage: "pause:dev", Logf: t.Logf})
	if err != nil {
		if c != nil {
			for _, n := range []string{"kubelet", "containerd", "kube-proxy"} {
				t.Logf("%s log:\n%s", n, c.LogTail(n))
			}
			c.Stop()
		}
		t.Fatal(err)
	}
	for _, p := range c.Timings {
		t.Logf("start: %-22s %v", p.Phase, p.Duration.Round(time.Millisecond))
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: "pause:dev", ImagePullPolicy: corev1.PullNever}}},
	}
	if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ip string
	polltest.Until(t, "the pod Running", func() bool {
		p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, "pause", metav1.GetOptions{})
		if err != nil {
			return false
		}
		ip = p.Status.PodIP
		return p.Status.Phase == corev1.PodRunning
	})
	if _, podNet, _ := net.ParseCIDR(c.PodCIDR); !podNet.Contains(net.ParseIP(ip)) {
		t.Errorf("pod IP %s is not in the pod network %s", ip, c.PodCIDR)
	}
	dir := c.Dir
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	stopped = true
	if left := c.Leftovers(); len(left) > 0 {
		t.Errorf("the cluster left behind:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir)); !os.IsNotExist(err) {
		t.Errorf("%s still exists", dir)
	}
}
