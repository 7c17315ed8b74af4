package broker

import (
	"regexp"
	"strings"
)

// Workload types the legacy API accepts in irsa_workload_type.
var WorkloadTypes = []string{"edge-workload", "cluster-master", "cluster-worker", "cluster-edge"}

// runIDRE is the grammar of a run id: it becomes part of a service-account name
// (run-<id>, an RFC 1123 label) and of an IAM condition value, so it must be a
// lowercase DNS label and can never carry IAM wildcards.
var runIDRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidateRunID rejects anything that is not a plausible run id (invariant 5).
func ValidateRunID(id string) error {
	switch {
	case id == "":
		return Invalid("invalid_run_id", "run_id is required")
	case strings.ContainsAny(id, "*?"):
		return Invalid("invalid_run_id", "run_id must not contain IAM wildcard characters")
	case len(id) > 59 || !runIDRE.MatchString(id):
		return Invalid("invalid_run_id", "run_id must be lowercase letters, digits and '-', at most 59 characters, starting and ending with a letter or digit")
	}
	return nil
}

// ValidateWorkloadType accepts "" or one of WorkloadTypes.
func ValidateWorkloadType(t string) error {
	if t == "" {
		return nil
	}
	for _, w := range WorkloadTypes {
		if t == w {
			return nil
		}
	}
	return Invalid("invalid_workload_type", "irsa_workload_type must be one of %s", strings.Join(WorkloadTypes, ", "))
}

var k8sNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// ValidateServiceAccountName checks an RFC 1123 subdomain of at most 253 characters.
func ValidateServiceAccountName(n string) error {
	if n == "" || len(n) > 253 || !k8sNameRE.MatchString(n) {
		return Invalid("invalid_service_account_name", "service_account_name must be a lowercase RFC 1123 name: letters, digits, '-' and '.', at most 253 characters")
	}
	return nil
}
