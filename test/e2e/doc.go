// Package e2e runs the broker binary against a real kube-apiserver and etcd
// (test/kubetest) and the IAM/STS simulator, end to end.
package e2e
