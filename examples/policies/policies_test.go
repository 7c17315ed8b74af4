package policies_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// TestRego runs the examples' _test.rego files, like `opa test examples/policies`.
func TestRego(t *testing.T) {
	files, err := filepath.Glob("*.rego")
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if modules[f], err = ast.ParseModuleWithOpts(f, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
	}
	runRegoTests(t, tester.NewRunner().SetModules(modules), 8)
}

// runRegoTests runs r's tests, each of which must pass; at least atLeast must run.
func runRegoTests(t *testing.T, r *tester.Runner, atLeast int) {
	t.Helper()
	ch, err := r.RunTests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for r := range ch {
		ran++
		if r.Error != nil || r.Fail {
			t.Errorf("%s.%s failed: %v", r.Package, r.Name, r.Error)
		}
	}
	if ran < atLeast {
		t.Errorf("only %d Rego tests ran", ran)
	}
}

// TestEngineServesTheExamples loads the folder as --policy-dir does: the
// examples replace the defaults and decide as their tests say.
func TestEngineServesTheExamples(t *testing.T) {
	ctx := context.Background()
	e, err := policy.New(ctx, policy.Options{PolicyDir: ".", Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	snap := model.Snapshot{Revision: "1", Mappings: map[string]model.Mapping{"data": {Org: "data", Pairs: []model.RolePair{
		{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-read-bucket-role", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/acme-read-bucket-role", UpdateTrustPolicy: true},
		{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-update-bucket-role", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/acme-update-bucket-role", UpdateTrustPolicy: true},
	}}}}
	user := sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"data"}}
	d, err := e.Grants(ctx, policy.Input{Identity: user, Workload: model.Workload{RunID: "r1", Type: "cluster-worker"}}, snap)
	if err != nil || len(d.Grants) != 1 {
		t.Fatalf("cluster worker: %+v %v", d, err)
	}
	d, err = e.Grants(ctx, policy.Input{Identity: user, Workload: model.Workload{RunID: "r1", Type: "edge-workload"}}, snap)
	if err != nil || len(d.Grants) != 2 {
		t.Fatalf("workspace: %+v %v", d, err)
	}
	editor := sdk.Identity{ID: "u2", Username: "ed", Groups: []string{"irsa-mapping-editors"}}
	if ok, err := e.Allow(ctx, policy.Input{Identity: editor, Request: policy.Request{Action: "mapping.write"}}); err != nil || !ok {
		t.Fatalf("editor write: %v %v", ok, err)
	}
	if ok, _ := e.Allow(ctx, policy.Input{Identity: editor, Request: policy.Request{Action: "mapping.delete"}}); ok {
		t.Fatal("editor may delete")
	}
}
