package helm

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// plainManifests maps each file of the plain manifests to the chart
// templates it holds.
var plainManifests = map[string][]string{
	"kubernetes/rbac.yaml":        {"serviceaccount.yaml", "rbac.yaml"},
	"kubernetes/broker.yaml":      {"configmaps.yaml", "deployment.yaml", "service.yaml", "networkpolicy.yaml"},
	"kubernetes/certificate.yaml": {"certificates.yaml"},
	"domsed/mutation.yaml":        {"mutations.yaml"},
}

const plainHeader = `# Generated from the chart deploy/helm/irsa-broker with
# deploy/kubernetes/values.yaml: do not edit. Change the chart or the values,
# then run go test ./deploy/helm -run TestPlainManifests -update.
`

var sourceLine = regexp.MustCompile(`(?m)^# Source: irsa-broker/templates/(\S+)$`)

// TestPlainManifests: deploy/kubernetes and deploy/domsed are the chart
// rendered with deploy/kubernetes/values.yaml, so the plain manifests and
// the chart cannot drift (-update rewrites them).
func TestPlainManifests(t *testing.T) {
	out, err := helm(t, "template", "irsa", chart, "--namespace", "domino-field", "-f", "../kubernetes/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*strings.Builder{}
	placed := map[string]string{}
	for file, templates := range plainManifests {
		files[file] = &strings.Builder{}
		for _, tpl := range templates {
			placed[tpl] = file
		}
	}
	for _, doc := range strings.Split(out, "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---\n")
		m := sourceLine.FindStringSubmatch(doc)
		if m == nil {
			continue
		}
		file, ok := placed[m[1]]
		if !ok {
			t.Fatalf("template %s renders with the plain values but has no file in plainManifests", m[1])
		}
		b := files[file]
		if b.Len() > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(strings.TrimSpace(sourceLine.ReplaceAllString(doc, "")) + "\n")
	}
	for file, b := range files {
		want := plainHeader + b.String()
		path := filepath.Join("..", file)
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("deploy/%s differs from the chart rendered with deploy/kubernetes/values.yaml; run go test ./deploy/helm -run TestPlainManifests -update", file)
		}
	}
}
