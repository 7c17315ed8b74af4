package iam

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/irsa-broker/irsa-broker/core/model"
)

// Kind classifies an IAM failure so that callers (the API layer) can map it to
// a response without looking at AWS error codes.
type Kind int

const (
	// KindUnknown is an error that fits no other kind.
	KindUnknown Kind = iota
	// KindAccessDenied: the broker's credentials may not do this (AccessDenied,
	// invalid or expired credentials, bad signature, unmodifiable role).
	KindAccessDenied
	// KindNoSuchEntity: the role (or other entity) does not exist.
	KindNoSuchEntity
	// KindLimitExceeded: an IAM quota, e.g. the trust-policy size quota.
	KindLimitExceeded
	// KindMalformedPolicy: IAM rejected the policy document.
	KindMalformedPolicy
	// KindInvalidInput: IAM rejected a parameter (role name, ...).
	KindInvalidInput
	// KindThrottled: still throttled after all retries.
	KindThrottled
	// KindUnavailable: IAM unreachable, failing with 5xx, or the call's
	// deadline passed.
	KindUnavailable
)

var kindNames = map[Kind]string{
	KindUnknown:         "unknown",
	KindAccessDenied:    "access_denied",
	KindNoSuchEntity:    "no_such_entity",
	KindLimitExceeded:   "limit_exceeded",
	KindMalformedPolicy: "malformed_policy",
	KindInvalidInput:    "invalid_input",
	KindThrottled:       "throttled",
	KindUnavailable:     "unavailable",
}

// String returns a short snake_case name, also used as a metric label.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is the one error type this package returns for failed IAM calls.
type Error struct {
	Kind    Kind
	Action  string // e.g. "iam:UpdateAssumeRolePolicy"
	Role    string // role name; empty for account-level calls
	Code    string // AWS's error code, e.g. "AccessDenied"; empty if AWS did not answer
	Message string // AWS's error message
	Err     error  // the underlying SDK error
}

// Error reads like
// "iam:UpdateAssumeRolePolicy on role acme-x: AccessDenied: User ... is not authorized ...".
func (e *Error) Error() string {
	s := e.Action
	if e.Role != "" {
		s += " on role " + e.Role
	}
	switch {
	case e.Code != "":
		s += ": " + e.Code
		if e.Message != "" {
			s += ": " + e.Message
		}
	case e.Err != nil:
		s += ": " + e.Kind.String() + ": " + e.Err.Error()
	default:
		s += ": " + e.Kind.String()
	}
	return s
}

// Unwrap returns the SDK error, so errors.Is(err, context.DeadlineExceeded)
// and errors.As(err, *smithy.APIError) keep working.
func (e *Error) Unwrap() error { return e.Err }

// Classify implements model.Classified: how a caller of the broker sees an
// IAM failure. A trust policy over IAM's size limit is the caller's
// conflict; throttling and outages are retried later; the rest is IAM
// answering something the broker cannot act on.
func (e *Error) Classify() (model.Kind, string, string) {
	switch e.Kind {
	case KindAccessDenied:
		return model.KindMisconfigured, "iam_access_denied", e.Error()
	case KindNoSuchEntity:
		return model.KindMisconfigured, "iam_no_such_role", e.Error()
	case KindLimitExceeded:
		return model.KindConflict, "trust_policy_too_large", e.Error()
	case KindMalformedPolicy:
		return model.KindMisconfigured, "iam_malformed_policy", e.Error()
	case KindInvalidInput:
		return model.KindMisconfigured, "iam_invalid_input", e.Error()
	case KindThrottled:
		return model.KindThrottled, "iam_throttled", e.Error()
	case KindUnavailable:
		return model.KindUnavailable, "iam_unavailable", e.Error()
	}
	return model.KindUpstream, "iam_error", e.Error()
}

// IsKind reports whether err is (or wraps) an *Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

var codeKinds = map[string]Kind{
	"AccessDenied":               KindAccessDenied,
	"AccessDeniedException":      KindAccessDenied,
	"UnauthorizedOperation":      KindAccessDenied,
	"InvalidClientTokenId":       KindAccessDenied,
	"SignatureDoesNotMatch":      KindAccessDenied,
	"ExpiredToken":               KindAccessDenied,
	"IncompleteSignature":        KindAccessDenied,
	"MissingAuthenticationToken": KindAccessDenied,
	"UnmodifiableEntity":         KindAccessDenied,
	"NoSuchEntity":               KindNoSuchEntity,
	"LimitExceeded":              KindLimitExceeded,
	"MalformedPolicyDocument":    KindMalformedPolicy,
	"InvalidInput":               KindInvalidInput,
	"ValidationError":            KindInvalidInput,
	"ServiceFailure":             KindUnavailable,
	"ServiceUnavailable":         KindUnavailable,
	"InternalFailure":            KindUnavailable,
	"RequestTimeout":             KindUnavailable,
}

// classify wraps err (returned by the SDK for action on role) into an *Error.
func classify(err error, action, role string) *Error {
	e := &Error{Kind: KindUnknown, Action: action, Role: role, Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code, e.Message = apiErr.ErrorCode(), apiErr.ErrorMessage()
		if k, ok := codeKinds[e.Code]; ok {
			e.Kind = k
			return e
		}
		if _, ok := retry.DefaultThrottleErrorCodes[e.Code]; ok {
			e.Kind = KindThrottled
			return e
		}
	}
	var quotaErr *ratelimit.QuotaExceededError
	var respErr *smithyhttp.ResponseError
	var netErr net.Error
	switch {
	case errors.As(err, &quotaErr):
		e.Kind = KindThrottled
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() == 429:
		e.Kind = KindThrottled
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500:
		e.Kind = KindUnavailable
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() == 403:
		e.Kind = KindAccessDenied
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.Kind = KindUnavailable
	case errors.As(err, &netErr):
		e.Kind = KindUnavailable
	}
	return e
}
