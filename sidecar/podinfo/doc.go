// Package podinfo reads the pod's downward-API labels file and extracts the run id
// and IRSA workload type the broker needs.
package podinfo
