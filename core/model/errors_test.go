package model

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassify(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		name     string
		err      error
		kind     Kind
		code     string
		message  string
		causeVis bool // cause reachable with errors.Is
	}{
		{"unclassified", cause, KindInternal, "internal", "internal error", true},
		{"nil-safe wrap", fmt.Errorf("ctx: %w", Invalid("invalid_run_id", "run_id %q is bad", "x*")), KindInvalid, "invalid_run_id", `run_id "x*" is bad`, false},
		{"wrapped cause hidden from message", Wrap(KindUnavailable, "store_unavailable", "the store is unavailable", cause), KindUnavailable, "store_unavailable", "the store is unavailable", true},
		{"outermost classification wins", Wrap(KindConflict, "outer", "outer", Invalid("inner", "inner")), KindConflict, "outer", "outer", false},
		{"validation error", fmt.Errorf("put: %w", &ValidationError{Field: "domino_org", Message: "is required"}), KindInvalid, "invalid_mapping", "domino_org: is required", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, c, m := Classify(tt.err)
			if k != tt.kind || c != tt.code || m != tt.message {
				t.Errorf("Classify = (%v, %q, %q), want (%v, %q, %q)", k, c, m, tt.kind, tt.code, tt.message)
			}
			if errors.Is(tt.err, cause) != tt.causeVis {
				t.Errorf("errors.Is(cause) = %v, want %v", !tt.causeVis, tt.causeVis)
			}
		})
	}
	if got := Wrap(KindUpstream, "x", "msg", cause).Error(); got != "msg: connection refused" {
		t.Errorf("Error() = %q: the cause belongs in logs", got)
	}
	p := Prefix("role pair 2", &ValidationError{Field: "iam_role_arn", Message: "bad"})
	if k, c, m := Classify(p); k != KindInvalid || c != "invalid_mapping" || m != "role pair 2: iam_role_arn: bad" {
		t.Errorf("Prefix: Classify = (%v, %q, %q)", k, c, m)
	}
	if got := Prefix("x", cause); got.Error() != "x: connection refused" || !errors.Is(got, cause) {
		t.Errorf("Prefix of an unclassified error = %v", got)
	}
	if KindThrottled.String() != "throttled" || Kind(99).String() != "kind(99)" {
		t.Error("Kind.String")
	}
}

func TestProxyRolesToUpdate(t *testing.T) {
	s := Snapshot{Mappings: map[string]Mapping{
		"b": {Org: "b", Pairs: []RolePair{{ProxyIAMRoleARN: "arn:p2", UpdateTrustPolicy: true}, {ProxyIAMRoleARN: "arn:p1", UpdateTrustPolicy: true}}},
		"a": {Org: "a", Pairs: []RolePair{{ProxyIAMRoleARN: "arn:p1", UpdateTrustPolicy: true}, {ProxyIAMRoleARN: "arn:p3"}}},
	}}
	got := fmt.Sprint(s.ProxyRolesToUpdate())
	if got != "[arn:p1 arn:p2]" {
		t.Errorf("ProxyRolesToUpdate = %s, want [arn:p1 arn:p2] (sorted, unique, only pairs that update trust)", got)
	}
}
