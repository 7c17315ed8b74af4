// Package trust edits IAM trust policies (only the broker's own subjects in the statements that federate the cluster's OIDC provider) and serializes, coalesces and size-checks the writes per role.
package trust
