package archtest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// knownViolations are the arrows the rules forbid that still exist, one line
// each with the issue removing it, e.g.
//
//	"b core/kube -> core/broker", // being removed by issue 12
//
// The test fails when one of them no longer occurs, so the list only shrinks.
// Both entries of issue 12 (that one and "d internal/devstack -> testing") are
// gone.
var knownViolations = []string{}

// moduleRoot is the nearest directory above the working directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func TestImportRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := Load(ctx, moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	// The graph is the real one: the packages the rules are about are in it,
	// with their imports.
	for _, rel := range []string{"core/model", "core/kube", "internal/brokerapi", "sidecar", "cmd/irsa-sidecar", "plugins/sdk"} {
		p := g.Packages[g.Module+"/"+rel]
		if p == nil || len(p.Imports) == 0 {
			t.Fatalf("package %s is missing from the graph or imports nothing", rel)
		}
	}

	seen := map[string]bool{}
	for _, v := range Check(g) {
		seen[v.Key()] = true
		if !slices.Contains(knownViolations, v.Key()) {
			t.Errorf("%v", v)
		}
	}
	for _, k := range knownViolations {
		if !seen[k] {
			t.Errorf("%q no longer occurs: remove it from knownViolations", k)
		}
	}
}
