package policy

import "github.com/irsa-broker/irsa-broker/plugins/sdk"

// Input is the document Rego policies see as `input`. Its JSON shape is a
// public contract for policy authors (docs/policies.md).
type Input struct {
	Identity sdk.Identity `json:"identity"`
	Workload Workload     `json:"workload"`
	Request  Request      `json:"request"`
}

// Workload is the run a request is about.
type Workload struct {
	RunID          string            `json:"run_id"`
	Type           string            `json:"workload_type,omitempty"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"service_account"`
	Pod            string            `json:"pod,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// Request describes the HTTP request being decided.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Action names what is asked: "map", "preview", "my_mappings", or an admin
	// action such as "mapping.write", "mapping.delete", "mapping.read",
	// "service_account.write".
	Action string `json:"action"`
	ID     string `json:"id,omitempty"`
}

// Grant is one role pair a workload may assume.
type Grant struct {
	Org               string `json:"org"`
	IAMRoleARN        string `json:"iam_role_arn"`
	ProxyIAMRoleARN   string `json:"proxy_iam_role_arn"`
	UpdateTrustPolicy bool   `json:"update_iam_role_trust_policy"`
}

// Decision is the outcome of one grants evaluation.
type Decision struct {
	ID       string  `json:"decision_id"`
	Grants   []Grant `json:"grants"`
	Revision string  `json:"policy_revision"`
}
