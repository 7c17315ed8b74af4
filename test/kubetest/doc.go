// Package kubetest starts a real Kubernetes control plane (etcd and
// kube-apiserver on free loopback ports) for tests.
package kubetest
