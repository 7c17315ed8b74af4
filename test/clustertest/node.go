package clustertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// kubeletConfig is the node's KubeletConfiguration: cgroupfs (these
// machines have cgroup v1) under a cgroup root of its own, no swap check,
// the cluster's DNS, and an API the test's API server may read logs from
// (anonymous, always allowed: the kubelet listens only inside the node's
// namespace, on the node IP). Eviction thresholds are low so that a busy
// test machine does not evict the test's pods.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %[1]s
cgroupsPerQOS: true
failSwapOn: false
address: %[2]s
port: 10250
readOnlyPort: 0
healthzPort: 0
clusterDomain: cluster.local
clusterDNS: [%[3]q]
resolvConf: %[4]q
podLogsDir: %[5]q
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 250
syncFrequency: 10s
fileCheckFrequency: 0s
shutdownGracePeriod: 0s
`

// makeCgroupRoot creates the kubelet's cgroup root in every hierarchy (the
// kubelet requires it to exist); a cpuset needs its CPUs and memory nodes
// before anything can join it.
func makeCgroupRoot(root string) error {
	for _, h := range cgroupControllers() {
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
				}
			}
		}
	}
	return nil
}

// startKubelet starts the kubelet in the node's namespace.
func (c *Cluster) startKubelet(bin string) error {
	if err := makeCgroupRoot(c.cgroupRoot); err != nil {
		return err
	}
	dir := c.path("kubelet")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Pods resolve through the cluster's DNS only: the kubelet adds no
	// name server of this machine's.
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("options ndots:5\n"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(kubeletConfig, c.cgroupRoot, c.net.NodeIP, c.net.HostIP, resolv, filepath.Join(dir, "pod-logs"))
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	_, err := c.startInNS("kubelet", bin,
		"--config="+filepath.Join(dir, "config.yaml"),
		"--kubeconfig="+c.CP.Kubeconfig,
		"--container-runtime-endpoint=unix://"+c.ContainerdSocket,
		"--root-dir="+filepath.Join(dir, "root"),
		"--cert-dir="+filepath.Join(dir, "pki"),
		"--node-ip="+c.net.NodeIP,
		"--hostname-override="+c.NodeName,
		"--v=1",
	)
	return err
}

// startKubeProxy starts kube-proxy (iptables mode) in the node's namespace
// (its healthz and metrics ports are the namespace's own); it leaves the
// machine's conntrack settings alone.
func (c *Cluster) startKubeProxy(bin string) error {
	_, err := c.startInNS("kube-proxy", bin,
		"--kubeconfig="+c.CP.Kubeconfig,
		"--hostname-override="+c.NodeName,
		"--proxy-mode=iptables",
		"--cluster-cidr="+c.net.PodCIDR,
		"--bind-address="+c.net.NodeIP,
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--v=1",
	)
	return err
}

// startControllers starts kube-controller-manager and kube-scheduler on
// the host, talking to the API server as its admin.
func (c *Cluster) startControllers(cm, sched string) error {
	if _, err := c.start("kube-controller-manager", cm,
		"--kubeconfig="+c.CP.Kubeconfig,
		"--authentication-kubeconfig="+c.CP.Kubeconfig,
		"--authorization-kubeconfig="+c.CP.Kubeconfig,
		"--leader-elect=false",
		"--root-ca-file="+c.CP.CAFile(),
		"--service-cluster-ip-range="+c.net.ServiceCIDR,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--controllers=*,-nodeipam,-cloud-node-lifecycle,-service,-route,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
		"--v=1",
	); err != nil {
		return err
	}
	_, err := c.start("kube-scheduler", sched,
		"--kubeconfig="+c.CP.Kubeconfig,
		"--authentication-kubeconfig="+c.CP.Kubeconfig,
		"--authorization-kubeconfig="+c.CP.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--v=1",
	)
	return err
}

// corefile serves the cluster domain from the API on the host end of the
// node's veth (the kubelet's clusterDNS), with nothing upstream: names
// outside the cluster do not resolve.
const corefile = `.:53 {
    bind %[1]s
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %[2]s
        pods insecure
        ttl 5
    }
    cache 5
    loadbalance
}
`

// startDNS starts CoreDNS on the host.
func (c *Cluster) startDNS(ctx context.Context, bin string) error {
	path := c.path("Corefile")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(corefile, c.net.HostIP, c.CP.Kubeconfig)), 0o600); err != nil {
		return err
	}
	_, err := c.start("coredns", bin, "-conf", path, "-dns.port", "53")
	return err
}
