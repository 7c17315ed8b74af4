package clustertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

// containerdConfig is containerd 1.6's configuration for the node: its own
// root, state and socket; the CRI plugin with the locally built pause image,
// the CNI bridge config below, and the settings that hold on these machines
// (DESIGN.md, "A real node in tests").
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = "%[3]s.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = %[7]q
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
`

// cniConfig is the pod network: a bridge inside the node's namespace, with
// hairpin mode (a pod reaching itself through a Service), no masquerading.
// Pods route everything through the bridge: Services, the host end of the
// veth; the node's namespace has no route beyond.
const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "irsa-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}
  ]
}
`

// startContainerd writes containerd's and CNI's configuration under dir and
// starts containerd in the node's namespace.
func (c *Cluster) startContainerd(ctx context.Context) error {
	dir := c.path("containerd")
	cniDir := c.path("cni")
	for _, d := range []string{dir, cniDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	c.ContainerdSocket = filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.ContainerdSocket,
		filepath.Join(dir, "opt"), c.o.PauseImage, cniDir, c.o.Snapshotter)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	cni := fmt.Sprintf(cniConfig, c.net.Bridge, c.net.PodCIDR, c.net.PodGateway, c.path("cni-ipam"))
	if err := os.WriteFile(filepath.Join(cniDir, "10-irsa-test.conflist"), []byte(cni), 0o600); err != nil {
		return err
	}
	if _, err := c.startInNS("containerd", "containerd", "--config", filepath.Join(dir, "config.toml")); err != nil {
		return err
	}
	return kubetest.Poll(ctx, 100*time.Millisecond, "containerd's socket", func() (bool, error) {
		if p := c.exitedProc(); p != "" {
			return false, fmt.Errorf("%s exited:\n%s", p, c.LogTail(p))
		}
		return c.ctr(ctx, "version") == nil, nil
	})
}

// ctr runs containerd's CLI against the node's containerd, in the
// namespace Kubernetes uses.
func (c *Cluster) ctr(ctx context.Context, args ...string) error {
	return run(ctx, "ctr", append([]string{"--address", c.ContainerdSocket, "--namespace", "k8s.io"}, args...)...)
}

// ImportImages imports OCI archives into the node's containerd, where pods
// find them with imagePullPolicy Never (or IfNotPresent). An archive
// <name>.oci.tar holds the tags of image <name> (deploy/images/build.sh).
func (c *Cluster) ImportImages(ctx context.Context, archives ...string) error {
	for _, a := range archives {
		// The CRI plugin looks images up by their normalized name (what a
		// pod's "irsa-broker:v1" means); the archive's tags are bare.
		name, err := reference.ParseNormalizedNamed(strings.TrimSuffix(filepath.Base(a), ".oci.tar"))
		if err != nil {
			return fmt.Errorf("clustertest: image archive %s: %w", a, err)
		}
		if err := c.ctr(ctx, "images", "import", "--base-name", name.Name(), "--snapshotter", c.o.Snapshotter, a); err != nil {
			return fmt.Errorf("clustertest: import %s: %w", a, err)
		}
	}
	return nil
}

// images lists the references the node's containerd holds.
func (c *Cluster) images(ctx context.Context) (string, error) {
	out, err := runOutput(ctx, "ctr", "--address", c.ContainerdSocket, "--namespace", "k8s.io", "images", "list", "-q")
	return strings.TrimSpace(out), err
}
