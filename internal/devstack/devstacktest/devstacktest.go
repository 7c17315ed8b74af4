// Package devstacktest starts the dev stack for tests.
package devstacktest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/wire"
	"github.com/irsa-broker/irsa-broker/examples"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/plugins/static"
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

// Broker builds a second broker through serve's graph (core/wire) beside the
// stack's own, for a test that needs other settings: serve's defaults with
// plain HTTP, workloads named by the caller, the stack's OIDC provider and its
// simulator as IAM (with the stack's key), then edit's changes, validated as
// serve validates them. Its users are examples/dev-users.yaml and its mappings
// an empty memory store. It serves on an httptest server until the test ends;
// Broker returns the server's URL.
func Broker(t testing.TB, st *devstack.Stack, edit func(*config.Serve)) string {
	t.Helper()
	cfg := config.Defaults()
	cfg.InsecureHTTP, cfg.Workloads, cfg.OIDCProvider = true, "caller", st.OIDCProvider
	cfg.AWSRegion, cfg.IAMEndpoint = devstack.Region, st.AWSURL
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	users := static.New()
	if err := users.Configure(context.Background(), examples.DevUsers); err != nil {
		t.Fatal(err)
	}
	b, err := wire.Build(context.Background(), cfg, wire.Edges{Identity: users, Mappings: mapping.NewMemoryStore(),
		IAMCredentials: credentials.NewStaticCredentialsProvider(st.AccessKeyID, st.SecretKey, "")}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.Handler)
	t.Cleanup(func() { srv.Close(); b.Close() })
	return srv.URL
}

// AddProxyRole creates another proxy role in the stack's EKS account like the
// seeded one named like: at path/name, with the same trust policy (no subject
// in it) and permission to assume the asset role named like. It returns the
// new role's ARN.
func AddProxyRole(t testing.TB, st *devstack.Stack, like, path, name string) string {
	t.Helper()
	doc, err := st.Sim.TrustPolicy(devstack.EKSAccount, like)
	if err != nil {
		t.Fatal(err)
	}
	arn, err := st.Sim.CreateRole(devstack.EKSAccount, name, path, doc)
	if err != nil {
		t.Fatal(err)
	}
	perm := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::%s:role/%s"}]}`, devstack.AssetsAccount, like)
	if err := st.Sim.PutRolePolicy(devstack.EKSAccount, name, "assume-asset-role", perm); err != nil {
		t.Fatal(err)
	}
	return arn
}
