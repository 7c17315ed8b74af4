// Package devstacktest starts the dev stack for tests.
package devstacktest

import (
	"context"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
)

// Start starts a stack on free loopback ports for a test and stops it at
// the test's end.
func Start(t testing.TB, o devstack.Options) *devstack.Stack {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.AWSAddr == "" {
		o.AWSAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := devstack.Start(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("start dev stack: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := st.Wait(); err != nil {
			t.Errorf("dev stack shutdown: %v", err)
		}
	})
	return st
}
