// Package kube is the broker's view of Kubernetes: which pod a run is, who
// started it, and which service account it runs as.
package kube
