// Package model holds the broker's nouns, pure and dependency-free (the
// standard library only; an import-rule test keeps it so):
//
//   - RoleARN: an IAM role ARN parsed and canonicalised once, so one role has
//     one spelling everywhere a key is built from it (trust-writer queues,
//     Leases, metrics, pruning);
//   - RolePair, Mapping, Snapshot: what an organization maps to, and a
//     consistent view of all mappings;
//   - Grant: a role pair the policy granted to a caller;
//   - Workload, WorkloadRequest, Pod: a run and the pod behind it;
//   - Subject: a service-account subject of a trust policy, rendered and
//     parsed here only;
//   - TrustChange: one subject added to or removed from one role (audit);
//   - Error and Kind: how a failure is reported to a caller, decided where
//     the failure is understood (docs/design/errors.md).
package model
