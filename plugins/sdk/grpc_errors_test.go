package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorsCrossTheWire(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code codes.Code
		is   []error
		not  []error
	}{
		{"unauthenticated", fmt.Errorf("%w: unknown token", ErrUnauthenticated), codes.Unauthenticated, []error{ErrUnauthenticated}, []error{ErrUnavailable}},
		{"invalid config", fmt.Errorf("%w: domino: timeout: must be positive", ErrInvalidConfig), codes.InvalidArgument, []error{ErrInvalidConfig}, []error{ErrUnauthenticated}},
		{"unavailable", fmt.Errorf("%w: domino: 502 Bad Gateway", ErrUnavailable), codes.Unavailable, []error{ErrUnavailable}, []error{ErrUnauthenticated}},
		{"deadline", fmt.Errorf("calling domino: %w", context.DeadlineExceeded), codes.DeadlineExceeded, []error{ErrUnavailable, context.DeadlineExceeded}, []error{ErrUnauthenticated}},
		{"canceled", context.Canceled, codes.Canceled, []error{context.Canceled}, []error{ErrUnavailable}},
		{"other", errors.New("nil pointer somewhere"), codes.Internal, nil, []error{ErrUnavailable, ErrUnauthenticated, ErrInvalidConfig}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := toStatus(c.err, "")
			if got := status.Code(st); got != c.code {
				t.Fatalf("code = %v, want %v", got, c.code)
			}
			back := fromStatus(st)
			for _, want := range c.is {
				if !errors.Is(back, want) {
					t.Errorf("errors.Is(%v, %v) = false", back, want)
				}
			}
			for _, not := range c.not {
				if errors.Is(back, not) {
					t.Errorf("errors.Is(%v, %v) = true", back, not)
				}
			}
			if !strings.Contains(back.Error(), c.err.Error()) {
				t.Errorf("message %q lost the provider's %q", back, c.err)
			}
		})
	}
	if fromStatus(nil) != nil || toStatus(nil, "x") != nil {
		t.Fatal("nil must stay nil")
	}
	// A non-status error (dial failure) is an outage.
	if err := fromStatus(errors.New("connection refused")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("transport error = %v", err)
	}
}

func TestToStatusScrubsTheCredential(t *testing.T) {
	secret := "s3cr3t-token-value"
	err := toStatus(fmt.Errorf("%w: no user for token %s (%s)", ErrUnauthenticated, secret, secret), secret)
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("credential crossed the wire: %v", err)
	}
	if !strings.Contains(err.Error(), redacted) {
		t.Fatalf("message = %v", err)
	}
}
