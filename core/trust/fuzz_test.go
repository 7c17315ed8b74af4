package trust

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
		subject := Subject(ns, name, legacy)
		valid := ValidateName(ns, name) == nil
		_, err = doc.Add(subject)
		if err != nil {
			if valid && doc.ManagedStatements() > 0 && !legacy {
				t.Fatalf("Add(%q): %v", subject, err)
			}
			return
		}
		if !valid {
			t.Fatalf("Add accepted the invalid subject %q", subject)
		}
		checkInvariants(t, in, doc)
		// Present, as written or (legacy asked for, exact already there) covered.
		if !doc.Has(subject) || !slices.Contains(doc.Subjects(), subject) && !doc.Has(Subject(ns, name, false)) {
			t.Fatalf("subject %q missing after Add: %q", subject, doc.Subjects())
		}
		after := doc.String()
		changed, err := doc.Add(subject)
		if err != nil || changed || doc.String() != after {
			t.Fatalf("second Add changed=%v err=%v", changed, err)
		}
		if _, err := doc.Remove(subject); err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, in, doc)
		if doc.Has(subject) || doc.Has(Subject(ns, name, !legacy)) {
			t.Fatalf("subject %q still granted after Remove: %s", subject, doc)
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
