package broker

import "fmt"

// Kind classifies broker errors; core/api maps each kind to one HTTP status.
type Kind int

const (
	KindInvalid         Kind = iota + 1 // 400
	KindUnauthenticated                 // 401
	KindForbidden                       // 403
	KindNotFound                        // 404
	KindConflict                        // 409
	KindUnavailable                     // 503
	KindUpstream                        // 502
)

// Error is a classified broker error. Message is safe to show to the caller.
type Error struct {
	Kind    Kind
	Code    string // machine-readable, e.g. "invalid_run_id"
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func newErr(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a 400-class error.
func Invalid(code, format string, args ...any) error {
	return newErr(KindInvalid, code, format, args...)
}
