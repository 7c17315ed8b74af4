package broker

import (
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// ValidateRunID rejects anything that is not a plausible run id
// (invariant 5; the grammar is brokerapi's).
func ValidateRunID(id string) error {
	if err := brokerapi.ValidateRunID(id); err != nil {
		return model.Invalid("invalid_run_id", "%s", err.Error())
	}
	return nil
}

// ValidateWorkloadType accepts "" or one of brokerapi.WorkloadTypes.
func ValidateWorkloadType(t string) error {
	if err := brokerapi.ValidateWorkloadType(t); err != nil {
		return model.Invalid("invalid_workload_type", "%s", err.Error())
	}
	return nil
}

// ValidateServiceAccountName checks a Kubernetes service-account name: a
// lowercase RFC 1123 subdomain of at most 253 characters.
func ValidateServiceAccountName(n string) error {
	if n == "" || len(validation.IsDNS1123Subdomain(n)) > 0 {
		return model.Invalid("invalid_service_account_name", "service_account_name must be a lowercase RFC 1123 name: letters, digits, '-' and '.', at most 253 characters")
	}
	return nil
}
