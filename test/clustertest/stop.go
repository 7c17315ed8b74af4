package clustertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/irsa-broker/irsa-broker/test/kubetest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stop deletes every pod (so the kubelet tears down their sandboxes,
// network namespaces and mounts), stops every component, removes what they
// leave on the host and the cluster's directory. It returns what could not
// be removed; Leftovers then tells what remains.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if c.Clientset != nil && c.kubeletRunning() {
		errs = append(errs, c.drain(ctx))
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.name == "containerd" {
			errs = append(errs, c.killTasks(ctx))
		}
		p.stop(10 * time.Second)
	}
	// Shims outlive containerd: they are daemons of their own.
	if c.ContainerdSocket != "" {
		for _, pid := range processesMentioning(c.ContainerdSocket) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if c.CP != nil {
		c.CP.Stop()
	}
	if c.cgroupRoot != "" {
		errs = append(errs, killCgroup(c.cgroupRoot), removeCgroups(c.cgroupRoot))
	}
	errs = append(errs, unmountUnder(c.Dir), removeLinksInto(containerLogLinks, c.Dir))
	if c.net != nil {
		errs = append(errs, c.net.down(ctx))
	}
	if c.Dir != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}

func (c *Cluster) kubeletRunning() bool {
	for _, p := range c.procs {
		if p.name == "kubelet" {
			return !p.exited()
		}
	}
	return false
}

// drain deletes every pod and waits until the kubelet has stopped them all.
func (c *Cluster) drain(ctx context.Context) error {
	cs := c.Clientset
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	grace := int64(1)
	for _, ns := range nss.Items {
		// Controllers would replace deleted pods: delete their owners too.
		_ = cs.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = cs.AppsV1().ReplicaSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
	}
	if err := kubetest.Poll(ctx, 250*time.Millisecond, "every pod gone", func() (bool, error) {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, kubetest.Retry(err)
		}
		return len(pods.Items) == 0, nil
	}); err != nil {
		return err
	}
	// A pod leaves the API before the kubelet has stopped its sandbox (and
	// removed its network namespace): wait for containerd to run nothing.
	return kubetest.Poll(ctx, 250*time.Millisecond, "every sandbox stopped", func() (bool, error) {
		out, err := runOutput(ctx, "ctr", "--address", c.ContainerdSocket, "--namespace", "k8s.io", "tasks", "list", "-q")
		return err == nil && strings.TrimSpace(out) == "", kubetest.Retry(err)
	})
}

// killTasks kills and deletes whatever containerd still runs (pods the
// kubelet did not stop in time), so that no shim or container survives.
func (c *Cluster) killTasks(ctx context.Context) error {
	out, err := runOutput(ctx, "ctr", "--address", c.ContainerdSocket, "--namespace", "k8s.io", "tasks", "list", "-q")
	if err != nil {
		return nil // containerd is not answering: the shims are killed below
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		_ = c.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", "--all", id)
		if err := kubetest.Poll(ctx, 100*time.Millisecond, "task "+id+" stopped", func() (bool, error) {
			return c.ctr(ctx, "tasks", "delete", id) == nil, nil
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// containerLogLinks is where every kubelet links container logs (fixed in
// the kubelet; the logs themselves are under podLogsDir, in Dir).
const containerLogLinks = "/var/log/containers"

// linksInto lists the symbolic links of dir that point below target.
func linksInto(dir, target string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if dest, err := os.Readlink(p); err == nil && target != "" && strings.HasPrefix(dest, target+"/") {
			out = append(out, p)
		}
	}
	return out
}

// removeLinksInto removes the links of dir that point below target.
func removeLinksInto(dir, target string) error {
	var errs []error
	for _, p := range linksInto(dir, target) {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cgroupControllers lists the mounted cgroup v1 hierarchies.
func cgroupControllers() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// cgroupDirs lists root and everything below it, in every hierarchy,
// deepest first.
func cgroupDirs(root string) []string {
	var dirs []string
	for _, h := range cgroupControllers() {
		_ = filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

// killCgroup kills every process left in the cgroups below root (container
// processes whose shim was killed).
func killCgroup(root string) error {
	for _, d := range cgroupDirs(root) {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	return nil
}

// removeCgroups removes the cgroups below root, waiting for killed
// processes to leave them.
func removeCgroups(root string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return kubetest.Poll(ctx, 100*time.Millisecond, "cgroups below "+root+" removed", func() (bool, error) {
		var last error
		for _, d := range cgroupDirs(root) {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				last = err
			}
		}
		return len(cgroupDirs(root)) == 0, kubetest.Retry(last)
	})
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	if dir == "" {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// unmountUnder unmounts everything at or below dir.
func unmountUnder(dir string) error {
	var errs []error
	for range 3 { // stacked mounts need more than one pass
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

func podNetns() []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cni-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// hostState is what the host holds that a cluster could leave behind.
type hostState struct {
	podNetns map[string]bool
	links    map[string]bool
	iptables string
}

func readHostState() hostState {
	s := hostState{podNetns: map[string]bool{}, links: map[string]bool{}}
	for _, ns := range podNetns() {
		s.podNetns[ns] = true
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 1 {
				s.links[strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")] = true
			}
		}
	}
	s.iptables = iptablesRules()
	return s
}

// iptablesRules is the host's rule set without counters.
func iptablesRules() string {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return "iptables-save: " + err.Error()
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		if strings.HasPrefix(l, ":") { // chain line: drop the counters
			l = strings.SplitN(l, " [", 2)[0]
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// Leftovers lists what the cluster left on the host after Stop: processes,
// mounts, cgroups, network namespaces, links and iptables rules that were
// not there before Start. Empty means the host is as it was.
func (c *Cluster) Leftovers() []string {
	var out []string
	for _, s := range []string{c.Dir, c.ContainerdSocket} {
		if s == "" {
			continue
		}
		for _, pid := range processesMentioning(s) {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			out = append(out, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	for _, mp := range mountsUnder(c.Dir) {
		out = append(out, "mount "+mp)
	}
	for _, l := range linksInto(containerLogLinks, c.Dir) {
		out = append(out, "log link "+l)
	}
	if c.cgroupRoot != "" {
		for _, d := range cgroupDirs(c.cgroupRoot) {
			out = append(out, "cgroup "+d)
		}
	}
	// Pod network namespaces nobody is in: another cluster's live pods
	// (tests run clusters in parallel) are not ours.
	used := netnsInUse()
	for _, ns := range podNetns() {
		if !c.baseline.podNetns[ns] && !used[netnsInode(ns)] {
			out = append(out, "network namespace "+ns)
		}
	}
	now := readHostState()
	if c.net != nil {
		if _, err := os.Stat(c.net.nsPath()); err == nil {
			out = append(out, "network namespace "+c.net.NetNS)
		}
	}
	for l := range now.links {
		// Another cluster's veth (irsah<M>) is its own business.
		if !c.baseline.links[l] && (!strings.HasPrefix(l, "irsah") || c.net != nil && l == c.net.HostVeth) {
			out = append(out, "link "+l)
		}
	}
	if now.iptables != c.baseline.iptables {
		out = append(out, "iptables rules changed:\n"+now.iptables)
	}
	if _, err := os.Stat(c.Dir); c.Dir != "" && err == nil {
		out = append(out, "directory "+c.Dir)
	}
	sort.Strings(out)
	return out
}
