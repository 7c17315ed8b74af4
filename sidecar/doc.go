// Package sidecar is the pod agent: it fetches the workload's AWS config from the
// broker, writes it atomically, verifies it against STS and serves /healthz,
// /readyz, /refresh, /status and /metrics on loopback.
package sidecar
