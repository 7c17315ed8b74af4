// Package awssim is a wire-compatible IAM and STS simulator (AWS Query protocol, SigV4,
// web-identity JWT verification, trust-policy evaluation) for tests, dev mode and benchmarks.
package awssim
