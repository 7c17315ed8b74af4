package broker

import (
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

func TestValidateRunID(t *testing.T) {
	ok := []string{"a", "646d27b817c28b5ea4b5b0c1", "run-1", strings.Repeat("a", 59)}
	bad := []string{"", "*", "a*", "a?b", "A1", "-a", "a-", "a_b", "a.b", "a:b", "a/b", " a", strings.Repeat("a", 60), "ä"}
	for _, id := range ok {
		if err := ValidateRunID(id); err != nil {
			t.Errorf("%q rejected: %v", id, err)
		}
	}
	for _, id := range bad {
		err := ValidateRunID(id)
		if kind, code, _ := model.Classify(err); kind != model.KindInvalid || code != "invalid_run_id" {
			t.Errorf("%q accepted or misclassified: %v", id, err)
		}
	}
}

func FuzzValidateRunID(f *testing.F) {
	for _, s := range []string{"run1", "*", "a?", "646d27b817c28b5ea4b5b0c1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateRunID(id) != nil {
			return
		}
		// Whatever passes is a Kubernetes label and can never be an IAM pattern.
		if strings.ContainsAny(id, "*?:/ ") || len(id) > 59 || strings.ToLower(id) != id {
			t.Fatalf("accepted %q", id)
		}
		if err := ValidateServiceAccountName("run-" + id); err != nil {
			t.Fatalf("run id %q gives an invalid service account name: %v", id, err)
		}
	})
}

func TestValidateWorkloadType(t *testing.T) {
	for _, w := range append([]string{""}, brokerapi.WorkloadTypes...) {
		if err := ValidateWorkloadType(w); err != nil {
			t.Errorf("%q: %v", w, err)
		}
	}
	for _, w := range []string{"gpu", "EDGE-WORKLOAD", "cluster-*"} {
		if ValidateWorkloadType(w) == nil {
			t.Errorf("%q accepted", w)
		}
	}
}
