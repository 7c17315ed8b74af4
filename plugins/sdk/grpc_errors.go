package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// redacted replaces a credential that a careless provider put in an error.
const redacted = "<redacted>"

// toStatus is the one place that maps provider errors to gRPC status codes.
// secret, when not empty, is scrubbed from the message: a credential never
// crosses the wire back to the host inside an error.
func toStatus(err error, secret string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, redacted)
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrUnauthenticated):
		code = codes.Unauthenticated
	case errors.Is(err, ErrInvalidConfig):
		code = codes.InvalidArgument
	case errors.Is(err, ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, msg)
}

// RemoteError is an error returned by a provider in another process: the
// message as the provider wrote it, unwrapping to the sentinel its gRPC status
// code stands for, so errors.Is(err, ErrUnauthenticated) holds on the host.
type RemoteError struct {
	Code codes.Code
	Msg  string
	is   []error
}

func (e *RemoteError) Error() string   { return e.Msg }
func (e *RemoteError) Unwrap() []error { return e.is }

// fromStatus is the inverse of toStatus. Transport failures (the plugin died,
// the connection broke) come back as ErrUnavailable.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: identity plugin: %w", ErrUnavailable, err)
	}
	e := &RemoteError{Code: st.Code(), Msg: st.Message()}
	switch st.Code() {
	case codes.Unauthenticated:
		e.is = []error{ErrUnauthenticated}
	case codes.InvalidArgument:
		e.is = []error{ErrInvalidConfig}
	case codes.Unavailable:
		e.is = []error{ErrUnavailable}
		if !strings.HasPrefix(e.Msg, ErrUnavailable.Error()) {
			e.Msg = ErrUnavailable.Error() + ": " + e.Msg
		}
	case codes.DeadlineExceeded:
		e.is = []error{ErrUnavailable, context.DeadlineExceeded}
		e.Msg = ErrUnavailable.Error() + ": " + e.Msg
	case codes.Canceled:
		e.is = []error{context.Canceled}
		e.Msg = "identity plugin: " + e.Msg
	default:
		e.Msg = "identity plugin: internal error: " + e.Msg
	}
	return e
}
