package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
)

func TestRunSubcommands(t *testing.T) {
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, nil, &out, &errb); err == nil || !strings.Contains(errb.String(), "Usage:") {
		t.Fatalf("no subcommand: err=%v stderr=%q", err, errb.String())
	}
	if err := run(ctx, []string{"frobnicate"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown subcommand: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"version"}, &out, &errb); err != nil || strings.TrimSpace(out.String()) == "" {
		t.Fatalf("version: %v %q", err, out.String())
	}
	// serve refuses an incomplete configuration before doing anything.
	errb.Reset()
	err := run(ctx, []string{"serve"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--oidc-provider") {
		t.Fatalf("serve without configuration: %v", err)
	}
	err = run(ctx, []string{"serve", "--no-such-flag"}, &out, &errb)
	if err == nil {
		t.Fatal("unknown flag accepted")
	}
}

// TestDevBanner runs the dev stack on free ports and checks the banner has
// what the walkthrough needs.
func TestDevBanner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		// In-process static provider: the test binary cannot serve built-in plugins.
		done <- runDev(ctx, []string{"--addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0", "--identity-plugin", ""}, &out, &errb)
	}()
	polltest.Until(t, "the banner", func() bool {
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, errb.String())
		default:
		}
		return out.Contains("Press Ctrl-C")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev: %v", err)
	}
	for _, want := range []string{"alice-token", "AWS_ENDPOINT_URL_STS=http://127.0.0.1:", "/map_iam_roles_to_pod_sa", "/dev/workload-token?run_id=run1", "irsactl whoami"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
}
