// Package clustertest starts a single-node Kubernetes cluster for tests:
// test/kubetest's etcd and kube-apiserver, kube-controller-manager,
// kube-scheduler, CoreDNS, and a node — containerd, kubelet and kube-proxy —
// inside a network namespace the harness creates. Pods really run, from
// images imported into the node's own containerd.
//
// Network. The node lives in namespace irsa-node-<N>, joined to the host by
// one veth pair: 10.250.<N>.1 on the host, 10.250.<N>.2 (the node IP) in
// the namespace. Pods get 10.251.<N>.0/24 on a CNI bridge inside the
// namespace; Services get 10.252.<N>.0/24. The namespace has no default
// route and nothing masquerades: pods reach the node, each other, Services
// and processes listening on the host end of the veth (the API server,
// CoreDNS, a test's own servers), and nothing beyond this machine. The
// host gets one route, to the pod network through the veth, which goes
// with the veth.
//
// State. containerd's root, state and socket, the kubelet's root and every
// log live under one directory (Cluster.Dir). Stop removes what the node
// leaves on the host — processes (containerd shims included), mounts,
// cgroups, the network namespace and with it the bridge, veths and
// iptables rules — and Leftovers counts what remains, so a test can prove
// that nothing does.
package clustertest
