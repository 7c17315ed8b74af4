// Package iam is the broker's narrow IAM client: only the calls the trust-policy writer uses, with adaptive retries, per-call deadlines, metrics and typed errors.
package iam
