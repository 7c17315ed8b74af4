package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// TestClassify: every typed error reaches the caller with its status, code
// and, for transient failures, Retry-After — also when wrapped or joined.
func TestClassify(t *testing.T) {
	iamErr := func(k iam.Kind) error {
		return &iam.Error{Kind: k, Action: "iam:UpdateAssumeRolePolicy", Role: "acme", Code: "X", Message: "AWS says no"}
	}
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{model.Invalid("invalid_run_id", "bad"), 400, "invalid_run_id", false},
		{model.Errorf(model.KindForbidden, "not_workload_owner", "no"), 403, "not_workload_owner", false},
		{model.Errorf(model.KindNotFound, "run_not_found", "no"), 404, "run_not_found", false},
		{model.Errorf(model.KindUnavailable, "x", "down"), 503, "x", true},
		{model.Errorf(model.KindUpstream, "identity_invalid", "no id"), 502, "identity_invalid", true},
		{&model.ValidationError{Field: "iam_role_arn", Message: "bad"}, 400, "invalid_mapping", false},
		{fmt.Errorf("%w: api down", mapping.ErrUnavailable), 503, "mapping_store_unavailable", true},
		{&trust.SizeError{Role: "arn:aws:iam::946429944765:role/acme", Size: 2100, Quota: 2048}, 409, "trust_policy_too_large", false},
		{&trust.NoManagedStatementError{Role: "r", Provider: "p"}, 502, "trust_policy_unmanaged", false},
		{&trust.MalformedPolicyError{Role: "r", Err: fmt.Errorf("%w: x", trust.ErrMalformedDocument)}, 502, "trust_policy_malformed", false},
		{fmt.Errorf("%w", model.Errorf(model.KindThrottled, "x", "slow down")), 503, "x", true},
		{model.Wrap(model.KindUnavailable, "x", "down", context.DeadlineExceeded), 503, "x", true},
		{iamErr(iam.KindAccessDenied), 502, "iam_access_denied", false},
		{iamErr(iam.KindNoSuchEntity), 502, "iam_no_such_role", false},
		{iamErr(iam.KindLimitExceeded), 409, "trust_policy_too_large", false},
		{iamErr(iam.KindMalformedPolicy), 502, "iam_malformed_policy", false},
		{iamErr(iam.KindInvalidInput), 502, "iam_invalid_input", false},
		{iamErr(iam.KindThrottled), 503, "iam_throttled", true},
		{iamErr(iam.KindUnavailable), 503, "iam_unavailable", true},
		{iamErr(iam.KindUnknown), 502, "iam_error", true},
		{errors.Join(nil, fmt.Errorf("role 2: %w", iamErr(iam.KindAccessDenied))), 502, "iam_access_denied", false},
		{context.DeadlineExceeded, 503, "timeout", true},
		{&http.MaxBytesError{Limit: MaxBodyBytes}, 413, "body_too_large", false},
		{errors.New("boom"), 500, "internal", false},
	}
	for _, c := range cases {
		p := classify(c.err)
		if p.status != c.status || p.code != c.code || (p.retryAfter > 0) != c.retryAfter {
			t.Errorf("%v → %d %s retry=%d, want %d %s retry=%v", c.err, p.status, p.code, p.retryAfter, c.status, c.code, c.retryAfter)
		}
		if p.status == 500 && p.message != "internal error" {
			t.Errorf("a 500 leaks detail: %q", p.message)
		}
	}
}
