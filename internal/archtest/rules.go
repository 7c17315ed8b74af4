package archtest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Violation is one forbidden arrow in the graph.
type Violation struct {
	Rule    string // the rule's ID
	Package string // the offending package, module-relative
	// Target is what Package must not reach: a package, or a pattern such as
	// "core/..." when any package of a tree is forbidden.
	Target string
	// Chain is the import chain from Package to the forbidden package,
	// module-relative where it is in the module.
	Chain []string
	// Files are, for the "testing" rule, the files that import it.
	Files []string
}

// Key identifies a violation independently of the chain it was found through:
// "<rule> <package> -> <target>".
func (v Violation) Key() string { return v.Rule + " " + v.Package + " -> " + v.Target }

func (v Violation) String() string {
	s := fmt.Sprintf("rule %s (%s): %s", v.Rule, ruleDoc(v.Rule), strings.Join(v.Chain, " → "))
	if len(v.Files) > 0 {
		s += " in " + strings.Join(v.Files, ", ")
	}
	return s
}

// Rule is one house rule on imports.
type Rule struct {
	ID    string
	Doc   string
	check func(g *Graph) []Violation
}

// Adapters are the packages that must not import the use cases, the
// composition root or the HTTP layer.
var Adapters = []string{"core/kube", "core/identity", "core/policy", "core/mapping", "core/trust",
	"core/iam", "core/awsconfig", "core/model", "core/metrics", "core/config"}

// Rules are the house rules (DESIGN.md, "Rules of the house").
var Rules = []Rule{
	{ID: "a", Doc: "plugins/sdk never depends on core", check: func(g *Graph) []Violation {
		return transitive(g, "a", func(rel string) bool { return under(rel, "plugins/sdk") },
			"core/...", func(path string) bool { return g.inModule(path) && under(g.rel(path), "core") })
	}},
	{ID: "b", Doc: "adapters never import core/broker, core/wire or core/api", check: func(g *Graph) []Violation {
		return direct(g, "b", func(rel string) bool { return underAny(rel, Adapters...) },
			func(path string) bool {
				return g.inModule(path) && underAny(g.rel(path), "core/broker", "core/wire", "core/api")
			})
	}},
	{ID: "c", Doc: "the sidecar links nothing of core", check: func(g *Graph) []Violation {
		return transitive(g, "c", func(rel string) bool { return underAny(rel, "sidecar", "cmd/irsa-sidecar") },
			"core/...", func(path string) bool { return g.inModule(path) && under(g.rel(path), "core") })
	}},
	{ID: "d", Doc: `no non-test file imports "testing" outside test/ and *test packages`, check: checkTesting},
	{ID: "e", Doc: "only internal/devstack, cmd/irsa-broker and test/ depend on internal/awssim", check: func(g *Graph) []Violation {
		return transitive(g, "e", func(rel string) bool {
			return !underAny(rel, "internal/devstack", "cmd/irsa-broker", "internal/awssim", "test")
		}, "internal/awssim", func(path string) bool { return g.inModule(path) && under(g.rel(path), "internal/awssim") })
	}},
	{ID: "f", Doc: "core/model and core/awsconfig depend on no Kubernetes, AWS or Prometheus package", check: func(g *Graph) []Violation {
		from := func(rel string) bool { return underAny(rel, "core/model", "core/awsconfig") }
		var out []Violation
		for _, prefix := range []string{"k8s.io/", "github.com/aws/", "github.com/prometheus/"} {
			out = append(out, transitive(g, "f", from, prefix+"...", func(path string) bool { return strings.HasPrefix(path, prefix) })...)
		}
		return out
	}},
	{ID: "g", Doc: "internal/brokerapi imports the standard library only", check: func(g *Graph) []Violation {
		return direct(g, "g", func(rel string) bool { return rel == "internal/brokerapi" },
			func(path string) bool { p := g.Packages[path]; return p == nil || !p.Standard })
	}},
}

// Check applies every rule to g and returns the violations sorted by Key.
func Check(g *Graph) []Violation {
	var out []Violation
	for _, r := range Rules {
		out = append(out, r.check(g)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func ruleDoc(id string) string {
	for _, r := range Rules {
		if r.ID == id {
			return r.Doc
		}
	}
	return "?"
}

// transitive reports, for every module package that from accepts, the
// shortest chain to a package that forbidden accepts.
func transitive(g *Graph, rule string, from func(rel string) bool, target string, forbidden func(path string) bool) []Violation {
	var out []Violation
	for _, p := range g.modulePackages() {
		rel := g.rel(p.Path)
		if !from(rel) {
			continue
		}
		if c := g.chain(p.Path, forbidden); c != nil {
			out = append(out, Violation{Rule: rule, Package: rel, Target: target, Chain: g.rels(c)})
		}
	}
	return out
}

// direct reports every import that forbidden accepts of every module package
// that from accepts.
func direct(g *Graph, rule string, from func(rel string) bool, forbidden func(path string) bool) []Violation {
	var out []Violation
	for _, p := range g.modulePackages() {
		rel := g.rel(p.Path)
		if !from(rel) {
			continue
		}
		for _, imp := range p.Imports {
			if forbidden(imp) {
				out = append(out, Violation{Rule: rule, Package: rel, Target: g.rel(imp), Chain: []string{rel, g.rel(imp)}})
			}
		}
	}
	return out
}

// checkTesting is rule d. Test helpers live in packages under test/ or named
// *test (sdktest, kubetest, awssimtest), which only tests import.
func checkTesting(g *Graph) []Violation {
	var out []Violation
	for _, p := range g.modulePackages() {
		rel := g.rel(p.Path)
		if under(rel, "test") || strings.HasSuffix(p.Name, "test") || !slices.Contains(p.Imports, "testing") {
			continue
		}
		out = append(out, Violation{Rule: "d", Package: rel, Target: "testing", Chain: []string{rel, "testing"}, Files: p.TestingFiles})
	}
	return out
}

// rels maps paths to module-relative names.
func (g *Graph) rels(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = g.rel(p)
	}
	return out
}
