package clustertest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerFile names, in a cluster's directory, the pid of the process that
// started it and the node's network namespace.
const ownerFile = "owner"

// writeOwner records this process as the cluster's owner.
func (c *Cluster) writeOwner() error {
	return os.WriteFile(c.path(ownerFile), []byte(strconv.Itoa(os.Getpid())+" "+c.net.NetNS+"\n"), 0o600)
}

// cleanStale removes what clusters of test processes that died without
// Stop (killed by a timeout, say) left behind: their shims and containers,
// cgroups, mounts, network namespaces and directories. Clusters whose owner
// still runs are left alone.
func cleanStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "irsa-cluster-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err != nil || syscall.Kill(pid, 0) == nil {
			continue // alive, or not ours to judge
		}
		for _, pid := range processesMentioning(dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		netns := f[1]
		_ = killCgroup("/" + netns)
		_ = removeCgroups("/" + netns)
		_ = unmountUnder(dir)
		n := &network{NetNS: netns, HostVeth: "irsah" + strings.TrimPrefix(netns, "irsa-node-")}
		_ = n.downQuiet()
		_ = os.RemoveAll(dir)
	}
	removeEmptyPodNetns()
}

// removeEmptyPodNetns removes pod network namespaces (/run/netns/cni-*)
// that no process is in any more: what a killed kubelet did not tear down.
// A namespace younger than a minute may be a sandbox another cluster is
// setting up (containerd creates it before the sandbox's process).
func removeEmptyPodNetns() {
	used := netnsInUse()
	for _, ns := range podNetns() {
		p := filepath.Join("/run/netns", ns)
		if fi, err := os.Lstat(p); err != nil || time.Since(fi.ModTime()) < time.Minute || used[netnsInode(ns)] {
			continue
		}
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		_ = os.Remove(p)
	}
}

// netnsInUse lists the network namespaces (by inode) some process is in.
func netnsInUse() map[uint64]bool {
	used := map[uint64]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", p.Name(), "ns", "net"), &st) == nil {
			used[st.Ino] = true
		}
	}
	return used
}

// netnsInode is the inode of /run/netns/name (0 when it is gone).
func netnsInode(name string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(filepath.Join("/run/netns", name), &st) != nil {
		return 0
	}
	return st.Ino
}
