package model

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the caller. core/api maps each kind to one
// HTTP status; nothing else switches over error types.
type Kind int

// The kinds. The comment names the HTTP status core/api answers with.
const (
	KindInternal        Kind = iota // 500: a bug or an unclassified failure
	KindInvalid                     // 400: the request is wrong
	KindUnauthenticated             // 401: no or bad credentials
	KindForbidden                   // 403: policy or ownership says no
	KindNotFound                    // 404: no such run, mapping, service account
	KindConflict                    // 409: the request clashes with the state of IAM or the cluster
	KindUpstream                    // 502 with Retry-After: a dependency failed (IAM, identity provider)
	KindMisconfigured               // 502: a dependency refuses because of how it is set up (access denied, no such role, a trust policy the broker cannot edit); retrying will not help
	KindUnavailable                 // 503: a dependency is down; retry later
	KindThrottled                   // 503: a dependency asked us to slow down; retry soon
	KindPrecondition                // 412: a write's precondition (a revision) no longer holds
)

var kindNames = [...]string{"internal", "invalid", "unauthenticated", "forbidden", "not_found", "conflict", "upstream", "misconfigured", "unavailable", "throttled", "precondition_failed"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Classified is implemented by every error that knows how it is reported:
// its kind, a stable machine-readable code ("trust_policy_too_large") and a
// message that is safe to show to the caller (no credentials, no internals).
type Classified interface {
	error
	Classify() (kind Kind, code, message string)
}

// Classify finds the first classified error in err's chain. An error with
// none is KindInternal, code "internal".
func Classify(err error) (kind Kind, code, message string) {
	var c Classified
	if errors.As(err, &c) {
		return c.Classify()
	}
	return KindInternal, "internal", "internal error"
}

// Error is a classified error built where the failure is understood.
type Error struct {
	Kind    Kind
	Code    string // machine-readable, e.g. "invalid_run_id"
	Message string // safe to show to the caller
	Err     error  // the cause, for logs and errors.Is/As; never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Classify implements Classified.
func (e *Error) Classify() (Kind, string, string) { return e.Kind, e.Code, e.Message }

// Errorf returns a classified error with a formatted message.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap classifies err, keeping it as the cause.
func Wrap(kind Kind, code, message string, err error) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: err}
}

// Prefix adds context to err, in its text and in the message the caller
// sees, keeping its classification: Prefix("role pair 2", err) reads
// "role pair 2: <message>". An unclassified err stays unclassified.
func Prefix(prefix string, err error) error {
	kind, code, message := Classify(err)
	if kind == KindInternal {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return &prefixed{prefix: prefix, kind: kind, code: code, message: message, err: err}
}

type prefixed struct {
	prefix, code, message string
	kind                  Kind
	err                   error
}

func (e *prefixed) Error() string { return e.prefix + ": " + e.err.Error() }
func (e *prefixed) Unwrap() error { return e.err }
func (e *prefixed) Classify() (Kind, string, string) {
	return e.kind, e.code, e.prefix + ": " + e.message
}

// Invalid returns a KindInvalid error.
func Invalid(code, format string, args ...any) *Error {
	return Errorf(KindInvalid, code, format, args...)
}

// ErrRoleNotManaged: a role's trust policy has no statement the broker may
// edit (none federates the cluster's OIDC provider). Clean-up skips such
// roles; a map request reports them.
var ErrRoleNotManaged = errors.New("role not managed by the broker")
