// Package cluster runs the broker as a Kubernetes workload on a real node
// (test/clustertest): the project's images, the manifests of deploy/ as
// shipped, workload pods shaped by the shipped domsed Mutation
// (test/domsed), the real sidecar mapping through the Service with the
// mounted CA, and the AWS SDK's own credential chain in the workload, all
// against the IAM/STS simulator with the cluster's real service-account
// issuer as OIDC provider. See docs/design/cluster-test.md.
package cluster
