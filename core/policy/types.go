package policy

import (
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Input is the document Rego policies see as `input`. Its JSON shape is a
// public contract for policy authors (docs/policies.md).
type Input struct {
	Identity sdk.Identity   `json:"identity"`
	Workload model.Workload `json:"workload"`
	Request  Request        `json:"request"`
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

// Decision is the outcome of one grants evaluation.
type Decision struct {
	ID       string        `json:"decision_id"`
	Grants   []model.Grant `json:"grants"`
	Revision string        `json:"policy_revision"`
}
