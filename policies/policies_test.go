package policies_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/irsa-broker/irsa-broker/policies"
)

// TestRego runs every _test.rego file against the embedded policies, like
// `opa test policies/`, so `go test ./...` catches Rego regressions.
func TestRego(t *testing.T) {
	modules := map[string]*ast.Module{}
	files, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	tests := 0
	for _, name := range files {
		src, err := fs.ReadFile(policies.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		mod, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		modules[name] = mod
		if strings.HasSuffix(name, "_test.rego") {
			tests++
		}
	}
	if tests == 0 {
		t.Fatal("no _test.rego files embedded")
	}
	ch, err := tester.NewRunner().SetModules(modules).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("run Rego tests: %v", err)
	}
	ran := 0
	for r := range ch {
		ran++
		switch {
		case r.Error != nil:
			t.Errorf("%s.%s: error: %v", r.Package, r.Name, r.Error)
		case r.Skip:
			t.Logf("%s.%s: skipped", r.Package, r.Name)
		case r.Fail:
			t.Errorf("%s.%s: FAIL (%s)", r.Package, r.Name, r.Location)
		}
	}
	if ran == 0 {
		t.Fatal("no Rego test ran")
	}
	t.Logf("%d Rego tests ran", ran)
}
