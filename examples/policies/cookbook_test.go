package policies_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// recipes are the cookbook's folders (docs/policies.md#cookbook); each is a
// --policy-dir of its own.
var recipes = []string{"oidc-group", "workload-type", "project-label", "deny-list", "break-glass", "per-user", "identity-provider"}

// TestCookbook does for every recipe what `irsactl policy check` and
// `irsactl policy test` do: compile it with the broker's embedded defaults
// and compiler (Rego v1, this OPA's capabilities, the input schema), its
// tests included, and run its _test.rego files, each of which must pass.
func TestCookbook(t *testing.T) {
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, d := range dirs {
		if d.IsDir() && !strings.HasPrefix(d.Name(), ".") && d.Name() != "testdata" {
			found = append(found, d.Name())
		}
	}
	slices.Sort(found)
	want := slices.Sorted(slices.Values(recipes))
	if !slices.Equal(found, want) {
		t.Fatalf("recipe folders %v, want %v (keep this list, the docs and the folders in step)", found, want)
	}
	for _, dir := range recipes {
		t.Run(dir, func(t *testing.T) {
			_, tests, err := policy.Check(dir)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if tests == 0 {
				t.Fatal("no _test.rego file")
			}
			r, err := policy.TestRunner(dir)
			if err != nil {
				t.Fatal(err)
			}
			runRegoTests(t, r, 3)
		})
	}
}

// TestCookbookServed: two recipes as the broker serves them (the engine,
// real input), one per query.
func TestCookbookServed(t *testing.T) {
	ctx := context.Background()
	snap := model.Snapshot{Revision: "1", Mappings: map[string]model.Mapping{
		"irsa-iamrole-read-bucket":   {Org: "irsa-iamrole-read-bucket", Pairs: []model.RolePair{{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-read-bucket-role", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/acme-read-bucket-role", UpdateTrustPolicy: true}}},
		"irsa-iamrole-update-bucket": {Org: "irsa-iamrole-update-bucket", Pairs: []model.RolePair{{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-update-bucket-role", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/acme-update-bucket-role", UpdateTrustPolicy: true}}},
	}}
	e, err := policy.New(ctx, policy.Options{PolicyDir: "identity-provider"})
	if err != nil {
		t.Fatal(err)
	}
	both := []string{"irsa-iamrole-read-bucket", "irsa-iamrole-update-bucket"}
	for provider, want := range map[string]int{"ci": 1, "domino": 2} {
		d, err := e.Grants(ctx, policy.Input{Identity: sdk.Identity{ID: "u", Username: "u", Organizations: both, Provider: provider}}, snap)
		if err != nil || len(d.Grants) != want {
			t.Errorf("provider %s: %d grants (%v), want %d", provider, len(d.Grants), err, want)
		}
	}
	e, err = policy.New(ctx, policy.Options{PolicyDir: filepath.Join(".", "break-glass")})
	if err != nil {
		t.Fatal(err)
	}
	id := sdk.Identity{ID: "o", Username: "oncall", Groups: []string{"irsa-break-glass"},
		Attributes: map[string]string{"break_glass_ticket": "INC-1", "break_glass_until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	if ok, err := e.Allow(ctx, policy.Input{Identity: id, Request: policy.Request{Action: "workload.map_foreign"}}); err != nil || !ok {
		t.Errorf("break glass with a ticket: %v %v", ok, err)
	}
	id.Attributes["break_glass_until"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if ok, err := e.Allow(ctx, policy.Input{Identity: id, Request: policy.Request{Action: "workload.map_foreign"}}); err != nil || ok {
		t.Errorf("break glass with an expired ticket: %v %v", ok, err)
	}
}
