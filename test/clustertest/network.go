package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
)

// network is the node's namespace and addresses.
type network struct {
	N           int
	NetNS       string // name under /run/netns
	HostVeth    string // host end of the veth pair
	HostIP      string // 10.250.N.1: the host as the node sees it
	NodeIP      string // 10.250.N.2
	PodCIDR     string // 10.251.N.0/24
	PodGateway  string // 10.251.N.1, the bridge
	ServiceCIDR string // 10.252.N.0/24
	ServiceIP   string // 10.252.N.1, Service "kubernetes"
	Bridge      string // the CNI bridge inside the namespace
}

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	_, err := runOutput(ctx, name, args...)
	return err
}

// inNS runs a command inside the node's network namespace.
func (n *network) inNS(ctx context.Context, name string, args ...string) error {
	return run(ctx, "nsenter", append([]string{"--net=" + n.nsPath(), "--", name}, args...)...)
}

func (n *network) nsPath() string { return "/run/netns/" + n.NetNS }

// pickNetwork chooses N so that none of the test's ranges is in use on this
// machine (another test cluster, a host network).
func pickNetwork() (*network, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	netnses, _ := os.ReadDir("/run/netns")
	taken := map[int]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip := ipn.IP.To4(); ip != nil && ip[0] == 10 && ip[1] >= 250 && ip[1] <= 252 {
				taken[int(ip[2])] = true
			}
		}
	}
	for _, e := range netnses {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "irsa-node-%d", &n); err == nil {
			taken[n] = true
		}
	}
	for range 100 {
		n := 16 + rand.IntN(224)
		if taken[n] {
			continue
		}
		return &network{
			N: n, NetNS: fmt.Sprintf("irsa-node-%d", n), HostVeth: fmt.Sprintf("irsah%d", n),
			HostIP: fmt.Sprintf("10.250.%d.1", n), NodeIP: fmt.Sprintf("10.250.%d.2", n),
			PodCIDR: fmt.Sprintf("10.251.%d.0/24", n), PodGateway: fmt.Sprintf("10.251.%d.1", n),
			ServiceCIDR: fmt.Sprintf("10.252.%d.0/24", n), ServiceIP: fmt.Sprintf("10.252.%d.1", n),
			Bridge: fmt.Sprintf("irsa%d", n),
		}, nil
	}
	return nil, fmt.Errorf("clustertest: no free 10.250-252.N range")
}

// up creates the namespace, the veth pair and the routes.
func (n *network) up(ctx context.Context) error {
	steps := [][]string{
		{"ip", "netns", "add", n.NetNS},
		{"ip", "link", "add", n.HostVeth, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
		{"ip", "addr", "add", n.HostIP + "/30", "dev", n.HostVeth},
		{"ip", "link", "set", n.HostVeth, "up"},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	inside := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", n.NodeIP + "/30", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
		// Forward between the pod bridge and the veth; bridged pod traffic
		// goes through iptables so that Service NAT works between pods of
		// the same bridge.
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"},
		{"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"},
	}
	for _, s := range inside {
		if err := n.inNS(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	// The host reaches pods (replies from the API server, CoreDNS, a
	// test's servers) through the veth; the route goes with the veth.
	return run(ctx, "ip", "route", "add", n.PodCIDR, "via", n.NodeIP, "dev", n.HostVeth)
}

// downQuiet is down without a context, for stale clusters.
func (n *network) downQuiet() error { return n.down(context.Background()) }

// down deletes the namespace: its veth end (and so the host's), bridge,
// routes and iptables rules go with it once no process holds it.
func (n *network) down(ctx context.Context) error {
	var errs []string
	if err := run(ctx, "ip", "link", "del", n.HostVeth); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err.Error())
	}
	if err := run(ctx, "ip", "netns", "del", n.NetNS); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("clustertest: network teardown: %s", strings.Join(errs, "; "))
	}
	return nil
}
