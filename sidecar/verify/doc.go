// Package verify proves a written AWS config works: for each source profile it
// calls STS AssumeRoleWithWebIdentity with the pod's token through the AWS SDK,
// retrying through IAM's propagation delay until success or a deadline.
package verify
