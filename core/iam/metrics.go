package iam

import (
	"context"
	"fmt"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"

	imetrics "github.com/irsa-broker/irsa-broker/core/metrics"
)

// metrics instruments the SDK with middleware rather than timers around
// each call: one observation per operation (all retries included) and one
// per attempt.
type metrics struct {
	duration *prometheus.HistogramVec // operation
	errors   *prometheus.CounterVec   // operation, kind
	attempts *prometheus.CounterVec   // operation
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "irsa_iam_call_duration_seconds",
			Help:    "Duration of IAM calls by operation, retries included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_iam_call_errors_total",
			Help: "Failed IAM calls by operation and error kind.",
		}, []string{"operation", "kind"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irsa_iam_call_attempts_total",
			Help: "HTTP attempts made for IAM calls by operation (more than calls when retried).",
		}, []string{"operation"}),
	}
	var err error
	if m.duration, err = imetrics.Register(reg, m.duration); err != nil {
		return nil, fmt.Errorf("iam: registering metrics: %w", err)
	}
	if m.errors, err = imetrics.Register(reg, m.errors); err != nil {
		return nil, fmt.Errorf("iam: registering metrics: %w", err)
	}
	if m.attempts, err = imetrics.Register(reg, m.attempts); err != nil {
		return nil, fmt.Errorf("iam: registering metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) addMiddleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("irsaIAMMetrics",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
			if err != nil {
				m.errors.WithLabelValues(op, classify(err, "", "").Kind.String()).Inc()
			}
			return out, md, err
		}), middleware.Before)
	if err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("irsaIAMAttempts",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			m.attempts.WithLabelValues(awsmiddleware.GetOperationName(ctx)).Inc()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}
