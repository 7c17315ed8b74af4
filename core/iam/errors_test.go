package iam

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func apiErr(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}

func httpErr(status int) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("boom")}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
		code string
	}{
		{"access denied", apiErr("AccessDenied", "User: x is not authorized"), KindAccessDenied, "AccessDenied"},
		{"bad signature", apiErr("SignatureDoesNotMatch", "m"), KindAccessDenied, "SignatureDoesNotMatch"},
		{"unknown key", apiErr("InvalidClientTokenId", "m"), KindAccessDenied, "InvalidClientTokenId"},
		{"unmodifiable", &types.UnmodifiableEntityException{Message: ptr("service-linked")}, KindAccessDenied, "UnmodifiableEntity"},
		{"no such entity", &types.NoSuchEntityException{Message: ptr("The role with name x cannot be found.")}, KindNoSuchEntity, "NoSuchEntity"},
		{"limit", &types.LimitExceededException{Message: ptr("Cannot exceed quota for ACLSizePerRole: 2048")}, KindLimitExceeded, "LimitExceeded"},
		{"malformed", &types.MalformedPolicyDocumentException{Message: ptr("bad")}, KindMalformedPolicy, "MalformedPolicyDocument"},
		{"invalid input", &types.InvalidInputException{Message: ptr("bad name")}, KindInvalidInput, "InvalidInput"},
		{"service failure", &types.ServiceFailureException{Message: ptr("oops")}, KindUnavailable, "ServiceFailure"},
		{"throttling", apiErr("Throttling", "Rate exceeded"), KindThrottled, "Throttling"},
		{"throttling after retries", &retry.MaxAttemptsError{Attempt: 8, Err: apiErr("Throttling", "Rate exceeded")}, KindThrottled, "Throttling"},
		{"retry quota", &ratelimit.QuotaExceededError{Available: 0, Requested: 5}, KindThrottled, ""},
		{"http 503", httpErr(503), KindUnavailable, ""},
		{"http 429", httpErr(429), KindThrottled, ""},
		{"deadline", fmt.Errorf("operation error: %w", context.DeadlineExceeded), KindUnavailable, ""},
		{"net", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, KindUnavailable, ""},
		{"other code", apiErr("EntityAlreadyExists", "m"), KindUnknown, "EntityAlreadyExists"},
		{"plain", errors.New("what"), KindUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.err, "iam:GetRole", "acme-x")
			if e.Kind != tt.want || e.Code != tt.code {
				t.Fatalf("kind %v code %q, want %v %q", e.Kind, e.Code, tt.want, tt.code)
			}
			if !errors.Is(e, tt.err) {
				t.Fatal("does not unwrap to the SDK error")
			}
			var target *Error
			if !errors.As(fmt.Errorf("wrapped: %w", e), &target) || !IsKind(fmt.Errorf("w: %w", e), tt.want) {
				t.Fatal("errors.As through wrapping failed")
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: KindAccessDenied, Action: "iam:UpdateAssumeRolePolicy", Role: "acme-x", Code: "AccessDenied", Message: "User: arn:aws:iam::1:user/b is not authorized"},
			"iam:UpdateAssumeRolePolicy on role acme-x: AccessDenied: User: arn:aws:iam::1:user/b is not authorized"},
		{&Error{Kind: KindThrottled, Action: "iam:GetAccountSummary", Code: "Throttling"}, "iam:GetAccountSummary: Throttling"},
		{&Error{Kind: KindUnavailable, Action: "iam:GetRole", Role: "r", Err: context.DeadlineExceeded},
			"iam:GetRole on role r: unavailable: context deadline exceeded"},
		{&Error{Kind: KindUnknown, Action: "iam:GetRole"}, "iam:GetRole: unknown"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q\nwant %q", got, tt.want)
		}
	}
	for k := KindUnknown; k <= KindUnavailable; k++ {
		if s := k.String(); strings.HasPrefix(s, "Kind(") || s == "" {
			t.Errorf("kind %d has no name", k)
		}
	}
}

// The SDK's retryer gets the knobs: attempts, a full-jitter backoff from
// RetryBaseDelay (1s for throttling) capped at MaxBackoff, throttling and 5xx
// retried, in both retry modes.
func TestRetryer(t *testing.T) {
	opts := Options{MaxAttempts: 7, RetryBaseDelay: 100 * time.Millisecond, MaxBackoff: 3 * time.Second}
	transient, throttle := httpErr(503), apiErr("Throttling", "Rate exceeded")
	for _, mode := range []aws.RetryMode{aws.RetryModeStandard, aws.RetryModeAdaptive} {
		opts.RetryMode = mode
		r := newRetryer(opts)
		if r.MaxAttempts() != 7 {
			t.Fatalf("%s: MaxAttempts = %d", mode, r.MaxAttempts())
		}
		for _, err := range []error{transient, throttle} {
			if !r.IsErrorRetryable(err) {
				t.Fatalf("%s: %v not retried", mode, err)
			}
		}
		if r.IsErrorRetryable(apiErr("AccessDenied", "no")) {
			t.Fatalf("%s: AccessDenied retried", mode)
		}
		for attempt := 1; attempt <= 40; attempt++ {
			for _, tc := range []struct {
				err  error
				base time.Duration
			}{{transient, opts.RetryBaseDelay}, {throttle, time.Second}} {
				ceiling := opts.MaxBackoff
				if attempt < 10 && tc.base<<(attempt-1) < ceiling {
					ceiling = tc.base << (attempt - 1)
				}
				seen := map[time.Duration]bool{}
				for range 50 {
					d, err := r.RetryDelay(attempt, tc.err)
					if err != nil || d < 0 || d > ceiling {
						t.Fatalf("%s attempt %d: delay %v (err %v), want within [0, %v]", mode, attempt, d, err, ceiling)
					}
					seen[d] = true
				}
				if len(seen) < 2 {
					t.Fatalf("%s attempt %d: no jitter", mode, attempt)
				}
			}
		}
	}
}

func TestDecodePolicy(t *testing.T) {
	for in, want := range map[string]string{
		"%7B%22Version%22%3A%222012-10-17%22%7D": `{"Version":"2012-10-17"}`,
		`{"a":"100%"}`:                           `{"a":"100%"}`,
		"  {\"a\": 1}":                           "  {\"a\": 1}",
		"%7B%22a%22%3A%22x+y%2Bz%20%22%7D":       `{"a":"x+y+z "}`,
	} {
		got, err := DecodePolicy(in)
		if err != nil || got != want {
			t.Errorf("DecodePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := DecodePolicy("%7B%zz"); err == nil {
		t.Error("bad escape accepted")
	}
}
