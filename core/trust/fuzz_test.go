package trust

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// FuzzDocument: parse → add → remove → serialize keeps foreign content,
// is idempotent, and its size is what IAM would count.
func FuzzDocument(f *testing.F) {
	files, err := filepath.Glob("testdata/documents/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed documents: %v", err)
	}
	for i, name := range append(files, "testdata/documents/url-encoded.txt") {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "domino-compute", "run-"+string(rune('a'+i)), i%3 == 0)
		f.Add(string(b), "domino-compute", "run-1", false)
	}
	f.Add(`{"Statement":{"Effect":"Allow","Principal":{"Federated":"arn:x:oidc-provider/`+testProvider+`"},"Action":["sts:assumerolewithwebidentity"],"Condition":{"ForAnyValue:StringLike":{"`+testProvider+`:sub":[]}}}}`, "a", "b", true)
	f.Fuzz(func(t *testing.T, in, ns, name string, legacy bool) {
		doc, err := Parse(in, testProvider)
		if err != nil {
			return
		}
		checkInvariants(t, in, doc)
		sub := subject(ns, name, legacy)
		valid := model.ValidateName(ns, name) == nil
		_, err = doc.Add(sub)
		if err != nil {
			if valid && doc.ManagedStatements() > 0 && !legacy {
				t.Fatalf("Add(%q): %v", sub, err)
			}
			return
		}
		if !valid {
			t.Fatalf("Add accepted the invalid sub %q", sub)
		}
		checkInvariants(t, in, doc)
		// Present, as written or (legacy asked for, exact already there) covered.
		if !doc.Has(sub) || !slices.Contains(doc.Subjects(), sub) && !doc.Has(subject(ns, name, false)) {
			t.Fatalf("sub %q missing after Add: %q", sub, doc.Subjects())
		}
		after := doc.String()
		changed, err := doc.Add(sub)
		if err != nil || changed || doc.String() != after {
			t.Fatalf("second Add changed=%v err=%v", changed, err)
		}
		if _, err := doc.Remove(sub); err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, in, doc)
		if doc.Has(sub) || doc.Has(subject(ns, name, !legacy)) {
			t.Fatalf("sub %q still granted after Remove: %s", sub, doc)
		}
		for _, m := range doc.managed {
			for _, sl := range m.slots {
				if len(sl.values) == 0 {
					t.Fatalf("a managed sub condition was left without values: %s", doc)
				}
			}
		}
	})
}
