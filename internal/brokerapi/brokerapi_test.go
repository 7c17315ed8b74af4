package brokerapi

import (
	"strings"
	"testing"
)

func TestValidateRunID(t *testing.T) {
	ok := []string{"run1", "a", "0", "abc-123", strings.Repeat("a", MaxRunIDLength)}
	bad := map[string]error{
		"":                                    ErrRunIDMissing,
		"run*":                                ErrRunIDWildcard,
		"r?n":                                 ErrRunIDWildcard,
		"Run1":                                ErrRunIDGrammar,
		"-run":                                ErrRunIDGrammar,
		"run-":                                ErrRunIDGrammar,
		"run.1":                               ErrRunIDGrammar,
		"run 1":                               ErrRunIDGrammar,
		"run/1":                               ErrRunIDGrammar,
		strings.Repeat("a", MaxRunIDLength+1): ErrRunIDGrammar,
	}
	for _, id := range ok {
		if err := ValidateRunID(id); err != nil {
			t.Errorf("ValidateRunID(%q) = %v, want nil", id, err)
		}
	}
	for id, want := range bad {
		if err := ValidateRunID(id); err != want {
			t.Errorf("ValidateRunID(%q) = %v, want %v", id, err, want)
		}
	}
	if got := len(RunPrefix + strings.Repeat("a", MaxRunIDLength)); got != 63 {
		t.Errorf("run-<longest id> is %d characters; want exactly the 63 a DNS label allows", got)
	}
}

func TestValidateWorkloadType(t *testing.T) {
	for _, w := range append([]string{""}, WorkloadTypes...) {
		if err := ValidateWorkloadType(w); err != nil {
			t.Errorf("ValidateWorkloadType(%q) = %v", w, err)
		}
	}
	for _, w := range []string{"worker", "Edge-Workload", "cluster-worker ", "*"} {
		if err := ValidateWorkloadType(w); err != ErrWorkloadType {
			t.Errorf("ValidateWorkloadType(%q) = %v, want ErrWorkloadType", w, err)
		}
	}
}
