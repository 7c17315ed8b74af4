package archtest

import (
	"slices"
	"strings"
	"testing"
)

const mod = "example.com/m"

// stdlib are the standard-library packages synthetic graphs may name.
var stdlib = []string{"errors", "fmt", "net/http", "regexp", "strings", "testing"}

// synthetic builds a Graph from edges between module-relative paths (or
// standard-library and third-party import paths, those with a dot in their
// first element). Package names are the last path element.
func synthetic(edges map[string][]string) *Graph {
	g := &Graph{Module: mod, Packages: map[string]*Package{}}
	abs := func(p string) string {
		if slices.Contains(stdlib, p) || strings.Contains(strings.Split(p, "/")[0], ".") {
			return p
		}
		return mod + "/" + p
	}
	add := func(p string) *Package {
		path := abs(p)
		if g.Packages[path] == nil {
			g.Packages[path] = &Package{Path: path, Name: p[strings.LastIndex(p, "/")+1:], Standard: slices.Contains(stdlib, p)}
		}
		return g.Packages[path]
	}
	for from, tos := range edges {
		p := add(from)
		for _, to := range tos {
			add(to)
			p.Imports = append(p.Imports, abs(to))
		}
	}
	return g
}

// clean obeys every rule, and each case adds arrows to it.
var clean = map[string][]string{
	"cmd/irsa-broker":            {"core/wire", "internal/devstack", "internal/awssim"},
	"cmd/irsa-sidecar":           {"sidecar"},
	"core/wire":                  {"core/api", "core/broker", "core/kube", "core/policy", "core/awsconfig"},
	"core/api":                   {"core/broker", "internal/brokerapi", "net/http"},
	"core/broker":                {"core/model", "errors"},
	"core/kube":                  {"core/model", "k8s.io/client-go/kubernetes"},
	"core/policy":                {"core/mapping", "github.com/open-policy-agent/opa/v1/rego"},
	"core/mapping":               {"core/model", "k8s.io/client-go/kubernetes"},
	"core/iam":                   {"github.com/aws/aws-sdk-go-v2/service/iam"},
	"core/metrics":               {"github.com/prometheus/client_golang/prometheus"},
	"core/awsconfig":             {"core/model", "strings"},
	"core/model":                 {"fmt", "regexp"},
	"internal/brokerapi":         {"errors", "regexp", "strings"},
	"internal/devstack":          {"core/wire", "internal/awssim"},
	"internal/awssim":            {"net/http"},
	"internal/awssim/awssimtest": {"internal/awssim", "testing"},
	"plugins/sdk":                {"google.golang.org/grpc"},
	"plugins/sdk/sdktest":        {"plugins/sdk", "testing"},
	"sidecar":                    {"sidecar/podinfo", "sidecar/brokerclient"},
	"sidecar/podinfo":            {"internal/brokerapi"},
	"sidecar/brokerclient":       {"internal/brokerapi", "net/http"},
	"test/kubetest":              {"internal/awssim", "testing", "core/kube"},
	"test/e2e":                   {"test/kubetest", "internal/devstack", "testing"},
}

// with returns clean plus the given arrows.
func with(extra map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range clean {
		out[k] = slices.Clone(v)
	}
	for k, v := range extra {
		out[k] = append(out[k], v...)
	}
	return out
}

func TestRulesFire(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string][]string
		want  []string // keys, sorted
		chain map[string]string
	}{
		{name: "clean graph", extra: nil, want: nil},
		{name: "a: sdk imports core", extra: map[string][]string{"plugins/sdk": {"core/model"}},
			want:  []string{"a plugins/sdk -> core/...", "a plugins/sdk/sdktest -> core/..."},
			chain: map[string]string{"a plugins/sdk/sdktest -> core/...": "plugins/sdk/sdktest → plugins/sdk → core/model"}},
		{name: "a: sdk reaches core through a third party", extra: map[string][]string{
			"plugins/sdk/internal/shim": {"github.com/x/y"}, "github.com/x/y": {"core/identity"}},
			want:  []string{"a plugins/sdk/internal/shim -> core/..."},
			chain: map[string]string{"a plugins/sdk/internal/shim -> core/...": "plugins/sdk/internal/shim → github.com/x/y → core/identity"}},
		{name: "b: adapters import use cases, root or HTTP", extra: map[string][]string{
			"core/kube": {"core/broker"}, "core/mapping": {"core/api"}, "core/iam": {"core/wire"}},
			// core/policy reaches core/api through core/mapping: direct imports suffice.
			want: []string{"b core/iam -> core/wire", "b core/kube -> core/broker", "b core/mapping -> core/api"}},
		{name: "c: sidecar reaches core", extra: map[string][]string{"sidecar/podinfo": {"core/model"}},
			want:  []string{"c cmd/irsa-sidecar -> core/...", "c sidecar -> core/...", "c sidecar/podinfo -> core/..."},
			chain: map[string]string{"c cmd/irsa-sidecar -> core/...": "cmd/irsa-sidecar → sidecar → sidecar/podinfo → core/model"}},
		{name: "d: non-test files import testing", extra: map[string][]string{
			"internal/devstack": {"testing"}, "internal/awssim": {"testing"}, "test/bench": {"testing"}},
			want: []string{"d internal/awssim -> testing", "d internal/devstack -> testing"}},
		{name: "e: product code reaches awssim", extra: map[string][]string{
			"core/iam": {"internal/awssim"}, "core/server": {"internal/devstack"}, "sidecar/verify": {"internal/awssim/awssimtest"}},
			want:  []string{"e core/iam -> internal/awssim", "e core/server -> internal/awssim", "e sidecar/verify -> internal/awssim"},
			chain: map[string]string{"e core/server -> internal/awssim": "core/server → internal/devstack → internal/awssim"}},
		{name: "f: model and awsconfig reach k8s, AWS, Prometheus", extra: map[string][]string{
			"core/model":     {"k8s.io/apimachinery/pkg/types", "core/metrics"},
			"core/awsconfig": {"github.com/aws/aws-sdk-go-v2/aws"}},
			want: []string{
				"f core/awsconfig -> github.com/aws/...", "f core/awsconfig -> github.com/prometheus/...", "f core/awsconfig -> k8s.io/...",
				"f core/model -> github.com/prometheus/...", "f core/model -> k8s.io/..."},
			chain: map[string]string{"f core/awsconfig -> github.com/prometheus/...": "core/awsconfig → core/model → core/metrics → github.com/prometheus/client_golang/prometheus"}},
		{name: "g: brokerapi imports beyond the standard library", extra: map[string][]string{
			"internal/brokerapi": {"github.com/google/uuid", "sidecar/podinfo"}},
			want: []string{"g internal/brokerapi -> github.com/google/uuid", "g internal/brokerapi -> sidecar/podinfo"}},
	}
	fired := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(synthetic(with(tt.extra)))
			var keys []string
			byKey := map[string]Violation{}
			for _, v := range got {
				keys = append(keys, v.Key())
				byKey[v.Key()] = v
				fired[v.Rule] = true
			}
			if !slices.Equal(keys, tt.want) {
				t.Errorf("violations:\n  got  %q\n  want %q", keys, tt.want)
			}
			for k, want := range tt.chain {
				if got := strings.Join(byKey[k].Chain, " → "); got != want {
					t.Errorf("chain of %s = %s, want %s", k, got, want)
				}
			}
		})
	}
	for _, r := range Rules {
		if !fired[r.ID] {
			t.Errorf("rule %s (%s) fired in no case: it could pass vacuously", r.ID, r.Doc)
		}
	}
}

func TestViolationString(t *testing.T) {
	v := Violation{Rule: "d", Package: "internal/devstack", Target: "testing", Chain: []string{"internal/devstack", "testing"}, Files: []string{"testing.go"}}
	want := `rule d (no non-test file imports "testing" outside test/ and *test packages): internal/devstack → testing in testing.go`
	if v.String() != want {
		t.Errorf("String() = %s\nwant       %s", v.String(), want)
	}
}
