package helm

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the values table of irsa-broker/README.md")

const (
	tableStart = "<!-- values:start -->"
	tableEnd   = "<!-- values:end -->"
)

// cellText escapes what Markdown would otherwise take from a table cell:
// the column separator, and placeholders such as <registry> (HTML tags).
var cellText = strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;")

// valuesTable renders values.yaml as a Markdown table: every leaf key with
// its default and its meaning. The meaning is the comment above the key; a
// key without one takes the comment of its nearest commented parent, which
// then describes the keys under it (resources, nodeSelector). A top-level
// key's comment never passes down: it heads a section ("broker:"), it does
// not describe each key in it. Otherwise the meaning is empty.
func valuesTable(t *testing.T) string {
	b, err := os.ReadFile("irsa-broker/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var rows []string
	var walk func(n *yaml.Node, prefix, parent string)
	walk = func(n *yaml.Node, prefix, parent string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			own := cleanComment(k.HeadComment)
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				switch {
				case prefix == "":
					own = "" // a section heading
				case own == "":
					own = parent
				}
				walk(v, key+".", own)
				continue
			}
			comment := own
			if comment == "" {
				comment = parent
			}
			def := v.Value
			if v.Kind != yaml.ScalarNode {
				out, _ := yaml.Marshal(v)
				def = strings.TrimSpace(string(out))
			}
			def = strings.ReplaceAll(strings.TrimSpace(def), "\n", "<br>")
			rows = append(rows, fmt.Sprintf("| `%s` | `%s` | %s |", key, def, cellText.Replace(comment)))
		}
	}
	walk(doc.Content[0], "", "")
	return "| key | default | meaning |\n|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
}

func cleanComment(c string) string {
	var lines []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " ")
}

// TestREADMEValuesTable keeps the chart README's values table in sync with
// values.yaml (go test ./deploy/helm -run TestREADME -update rewrites it).
func TestREADMEValuesTable(t *testing.T) {
	const path = "irsa-broker/README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, tableStart), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %s … %s markers", path, tableStart, tableEnd)
	}
	want := readme[:i+len(tableStart)] + "\n" + valuesTable(t) + readme[j:]
	if want == readme {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's values table is not values.yaml's: run go test ./deploy/helm -run TestREADME -update", path)
}
