package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

// Options configure Start.
type Options struct {
	// Images are OCI archives imported into the node's containerd before
	// the kubelet starts (deploy/images/build.sh writes them).
	Images []string
	// PauseImage is the sandbox image, one of Images (e.g. "pause:v1").
	PauseImage string
	// Snapshotter of containerd; "overlayfs" when empty.
	Snapshotter string
	// StartTimeout bounds Start; 5 minutes when zero.
	StartTimeout time.Duration
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Cluster is a running single-node cluster.
type Cluster struct {
	CP        *kubetest.ControlPlane
	Clientset *kubernetes.Clientset
	// Dir holds every file of the cluster; Stop removes it.
	Dir string
	// NodeName is the only node.
	NodeName string
	// HostIP is this machine as pods see it: a test server listening there
	// is reachable from pods. NodeIP is the node's address.
	HostIP, NodeIP       string
	PodCIDR, ServiceCIDR string
	ContainerdSocket     string
	// Timings of the start's phases, for a test to print.
	Timings []Timing

	o          Options
	net        *network
	cgroupRoot string
	procs      []*proc
	baseline   hostState
}

// Timing is how long one phase of Start took.
type Timing struct {
	Phase    string
	Duration time.Duration
}

func (c *Cluster) path(name string) string { return filepath.Join(c.Dir, name) }

// Start brings the cluster up and returns once the node is Ready, the
// Service "kubernetes" is programmed and the default service accounts
// exist. The caller must Stop it, also after an error.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Snapshotter == "" {
		o.Snapshotter = "overlayfs"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.PauseImage == "" {
		return nil, errors.New("clustertest: Options.PauseImage is required")
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	c := &Cluster{o: o, NodeName: "irsa-node", baseline: readHostState()}
	var err error
	// In memory when possible: etcd fsyncs a lot, and containerd's
	// snapshots and the kubelet's volumes are small.
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	cleanStale(base)
	if c.Dir, err = os.MkdirTemp(base, "irsa-cluster-"); err != nil {
		return nil, err
	}
	if c.net, err = pickNetwork(); err != nil {
		return c, err
	}
	if err := c.writeOwner(); err != nil {
		return c, err
	}
	c.HostIP, c.NodeIP, c.PodCIDR, c.ServiceCIDR = c.net.HostIP, c.net.NodeIP, c.net.PodCIDR, c.net.ServiceCIDR
	c.cgroupRoot = "/" + c.net.NetNS
	bins, err := NodeBinaries(ctx)
	if err != nil {
		return c, err
	}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"network", c.net.up},
		{"control plane", c.startControlPlane},
		{"controllers and DNS", func(ctx context.Context) error {
			if err := c.startControllers(bins.ControllerManager, bins.Scheduler); err != nil {
				return err
			}
			return c.startDNS(ctx, bins.CoreDNS)
		}},
		{"containerd and images", func(ctx context.Context) error {
			if err := c.startContainerd(ctx); err != nil {
				return err
			}
			return c.ImportImages(ctx, o.Images...)
		}},
		{"node ready", func(ctx context.Context) error {
			if err := c.startKubelet(bins.Kubelet); err != nil {
				return err
			}
			if err := c.startKubeProxy(bins.KubeProxy); err != nil {
				return err
			}
			return c.waitReady(ctx)
		}},
	}
	for _, p := range phases {
		start := time.Now()
		o.Logf("clustertest: %s", p.name)
		if err := p.fn(ctx); err != nil {
			return c, fmt.Errorf("clustertest: %s: %w", p.name, err)
		}
		c.Timings = append(c.Timings, Timing{p.name, time.Since(start)})
	}
	return c, nil
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	if err := os.MkdirAll(c.path("control-plane"), 0o700); err != nil {
		return err
	}
	cp, err := kubetest.Start(ctx, kubetest.Options{Dir: c.path("control-plane"), Address: c.net.HostIP, ServiceCIDR: c.net.ServiceCIDR,
		// Logs and exec reach the kubelet at the node IP (no DNS names the node).
		ExtraAPIServerArgs: []string{"--kubelet-preferred-address-types=InternalIP"}})
	if err != nil {
		return err
	}
	c.CP = cp
	c.Clientset, err = cp.Clientset(0, 0)
	return err
}

// waitReady waits for the node to be Ready, for the endpoints of Service
// "kubernetes" and for the default service accounts of the namespaces
// tests use.
func (c *Cluster) waitReady(ctx context.Context) error {
	cs := c.Clientset
	if err := kubetest.Poll(ctx, 250*time.Millisecond, "node "+c.NodeName+" Ready", func() (bool, error) {
		if p := c.exitedProc(); p != "" {
			return false, fmt.Errorf("%s exited:\n%s", p, c.LogTail(p))
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, kubetest.Retry(err)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, kubetest.Retry(fmt.Errorf("node: %s", cond.Message))
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	if err := kubetest.Poll(ctx, 250*time.Millisecond, "kube-proxy to program Service kubernetes", func() (bool, error) {
		out, err := runOutput(ctx, "nsenter", "--net="+c.net.nsPath(), "--", "iptables-save", "-t", "nat")
		return strings.Contains(out, "default/kubernetes:https"), kubetest.Retry(err)
	}); err != nil {
		return err
	}
	return kubetest.Poll(ctx, 250*time.Millisecond, "service account default", func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, kubetest.Retry(err)
	})
}

// exitedProc names a component that stopped, or "".
func (c *Cluster) exitedProc() string {
	for _, p := range c.procs {
		if p.exited() {
			return p.name
		}
	}
	return ""
}

// Bins are the node's binaries.
type Bins struct {
	Kubelet, KubeProxy, Scheduler, ControllerManager, CoreDNS string
}

// setup runs test/testenv/setup.sh with mode and returns the path it prints.
func setup(ctx context.Context, mode string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("clustertest: cannot locate the repository")
	}
	script := filepath.Join(filepath.Dir(self), "..", "testenv", "setup.sh")
	cmd := exec.CommandContext(ctx, "bash", script, mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("clustertest: %s %s failed (run `make testenv`): %w\n%s", script, mode, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// HelmCommand is the pinned helm (built the first time) with args, its
// cache, configuration and data under home: nothing of this machine's helm
// set-up leaks in.
func HelmCommand(ctx context.Context, home string, args ...string) (*exec.Cmd, error) {
	bin, err := setup(ctx, "--helm")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	return cmd, nil
}

// NodeBinaries finds (and, the first time, builds) the node's binaries
// through test/testenv/setup.sh --node, which prints their directory.
func NodeBinaries(ctx context.Context) (Bins, error) {
	dir, err := setup(ctx, "--node")
	if err != nil {
		return Bins{}, err
	}
	b := Bins{
		Kubelet: filepath.Join(dir, "kubelet"), KubeProxy: filepath.Join(dir, "kube-proxy"),
		Scheduler: filepath.Join(dir, "kube-scheduler"), ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		CoreDNS: filepath.Join(dir, "coredns"),
	}
	for _, p := range []string{b.Kubelet, b.KubeProxy, b.Scheduler, b.ControllerManager, b.CoreDNS} {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return Bins{}, fmt.Errorf("clustertest: test/testenv/setup.sh --node did not produce %s (run `make testenv`)", p)
		}
	}
	return b, nil
}
