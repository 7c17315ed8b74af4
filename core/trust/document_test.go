package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/irsa-broker/irsa-broker/core/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const testProvider = "oidc.eks.us-west-2.amazonaws.com/id/ABC"

func sa(name string) string { return subject("domino-compute", name, false) }

type step struct {
	add, remove []string
}

// Each case reads testdata/documents/<file>, applies the steps and compares
// the outcome with testdata/documents/<name>.golden.
var documentCases = []struct {
	name, file, provider string
	steps                []step
}{
	{"eks-basic-add", "eks-basic.json", testProvider, []step{{add: []string{sa("run-3")}}}},
	{"eks-basic-add-existing", "eks-basic.json", testProvider, []step{{add: []string{sa("run-1")}}}},
	{"eks-basic-remove", "eks-basic.json", testProvider, []step{{remove: []string{sa("run-1")}}}},
	{"eks-basic-add-remove", "eks-basic.json", testProvider, []step{{add: []string{sa("run-3"), sa("run-4")}, remove: []string{sa("run-2")}}}},
	{"eks-basic-https-provider", "eks-basic.json", "https://" + testProvider + "/", []step{{add: []string{sa("run-3")}}}},
	{"foreign-statements-add", "foreign-statements.json", testProvider, []step{{add: []string{sa("run-2")}}}},
	{"foreign-statements-remove-last", "foreign-statements.json", testProvider, []step{{remove: []string{sa("run-1")}}}},
	{"string-equals-add", "string-equals.json", testProvider, []step{{add: []string{sa("run-2")}}}},
	{"string-equals-legacy-rejected", "string-equals.json", testProvider, []step{{add: []string{subject("domino-compute", "run-2", true)}}}},
	{"single-string-add", "single-string.json", testProvider, []step{{add: []string{sa("run-2")}}}},
	{"legacy-patterns-exact-covered", "legacy-patterns.json", testProvider, []step{{add: []string{sa("run-1")}}}},
	{"legacy-patterns-remove-exact", "legacy-patterns.json", testProvider, []step{{remove: []string{sa("run-1")}}}},
	{"legacy-patterns-add-legacy", "legacy-patterns.json", testProvider, []step{{add: []string{subject("domino-compute", "run-3", true)}}}},
	{"deny-statement-add-remove", "deny-statement.json", testProvider, []step{{add: []string{sa("run-2")}}, {remove: []string{sa("run-1")}}}},
	{"empty-placeholder-add", "empty-placeholder.json", testProvider, []step{{add: []string{sa("run-1")}}}},
	{"empty-placeholder-roundtrip", "empty-placeholder.json", testProvider, []step{{add: []string{sa("run-1")}}, {remove: []string{sa("run-1")}}}},
	{"multiple-managed-add", "multiple-managed.json", testProvider, []step{{add: []string{sa("run-3")}}}},
	{"multiple-managed-remove", "multiple-managed.json", testProvider, []step{{remove: []string{sa("run-1")}}}},
	{"no-managed", "no-managed.json", testProvider, []step{{add: []string{sa("run-1")}}}},
	{"wrong-provider", "eks-basic.json", "oidc.eks.us-east-1.amazonaws.com/id/OTHER", []step{{add: []string{sa("run-1")}}}},
	{"no-sub-condition-add", "no-sub-condition.json", testProvider, []step{{add: []string{sa("run-1")}}}},
	{"no-condition-add", "no-condition.json", testProvider, []step{{add: []string{sa("run-1")}}}},
	{"both-operators-add", "both-operators.json", testProvider, []step{{add: []string{sa("run-2")}}}},
	{"unknown-fields-add", "unknown-fields.json", testProvider, []step{{add: []string{sa("run-2")}}}},
	{"url-encoded-add", "url-encoded.txt", testProvider, []step{{add: []string{sa("run-3")}}}},
	{"local-provider-add", "local-provider.json", "127.0.0.1:6000/dev/oidc", []step{{add: []string{sa("run-2")}}}},
	{"unchanged-reserialized", "foreign-statements.json", testProvider, nil},
}

func TestDocumentGolden(t *testing.T) {
	for _, tc := range documentCases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "documents", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := runSteps(t, string(in), tc.provider, tc.steps)
			golden := filepath.Join("testdata", "documents", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("outcome differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// runSteps renders the outcome of applying steps: per step whether the
// document changed or the error, then the subjects, size and document.
func runSteps(t *testing.T, in, provider string, steps []step) string {
	t.Helper()
	var out strings.Builder
	doc, err := Parse(in, provider)
	if err != nil {
		fmt.Fprintf(&out, "parse error: %v\n", err)
		return out.String()
	}
	fmt.Fprintf(&out, "managed statements: %d\n", doc.ManagedStatements())
	for i, s := range steps {
		before := doc.String()
		changedR, errR := doc.Remove(s.remove...)
		changedA, errA := doc.Add(s.add...)
		switch {
		case len(s.remove) > 0 && errR != nil:
			fmt.Fprintf(&out, "step %d: remove error: %v\n", i, errR)
		case len(s.add) > 0 && errA != nil:
			fmt.Fprintf(&out, "step %d: add error: %v\n", i, errA)
		default:
			fmt.Fprintf(&out, "step %d: changed=%v\n", i, changedR || changedA)
		}
		if (changedR || changedA) == (before == doc.String()) {
			t.Errorf("step %d: changed=%v but serialization changed=%v", i, changedR || changedA, before != doc.String())
		}
	}
	checkInvariants(t, in, doc)
	subs, _ := json.Marshal(doc.Subjects())
	fmt.Fprintf(&out, "subjects: %s\nsize: %d\n%s\n", subs, doc.Size(), doc.String())
	return out.String()
}

// checkInvariants holds for any parsed document after any edits: the
// serialization is compact, valid and stable, Size counts it, and every
// statement the broker does not manage is unchanged in meaning.
func checkInvariants(t testing.TB, in string, doc *Document) {
	t.Helper()
	s := doc.String()
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(s)); err != nil {
		t.Fatalf("serialization is not JSON: %v\n%s", err, s)
	}
	if compact.String() != s {
		t.Fatalf("serialization is not compact:\n%s", s)
	}
	if n, _ := PolicySize(s); doc.Size() != n || n != utf8.RuneCountInString(s) {
		t.Fatalf("Size()=%d, PolicySize=%d, characters=%d", doc.Size(), n, utf8.RuneCountInString(s))
	}
	re, err := Parse(s, doc.Provider())
	if err != nil {
		t.Fatalf("own output does not parse: %v\n%s", err, s)
	}
	if re.String() != s {
		t.Fatalf("serialization not stable:\n%s\n%s", s, re.String())
	}
	if !reflect.DeepEqual(re.Subjects(), doc.Subjects()) {
		t.Fatalf("subjects after reparse %q, before %q", re.Subjects(), doc.Subjects())
	}
	orig, err := Parse(in, doc.Provider())
	if err != nil {
		t.Fatal(err)
	}
	origStmts, newStmts := statements(t, orig), statements(t, re)
	if len(origStmts) != len(newStmts) {
		t.Fatalf("statement count %d → %d", len(origStmts), len(newStmts))
	}
	managed := map[int]bool{}
	for _, m := range orig.managed {
		managed[m.idx] = true
	}
	for i := range origStmts {
		if managed[i] {
			// Everything but the sub condition values is the same.
			a, b := stripSub(t, origStmts[i], doc.subKey), stripSub(t, newStmts[i], doc.subKey)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("managed statement %d changed beyond its sub values:\n%v\n%v", i, a, b)
			}
			continue
		}
		if !reflect.DeepEqual(origStmts[i], newStmts[i]) {
			t.Fatalf("foreign statement %d changed:\n%v\n%v", i, origStmts[i], newStmts[i])
		}
	}
	var ot, nt map[string]any
	_ = json.Unmarshal([]byte(orig.String()), &ot)
	_ = json.Unmarshal([]byte(s), &nt)
	delete(ot, "Statement")
	delete(nt, "Statement")
	if !reflect.DeepEqual(ot, nt) {
		t.Fatalf("top-level members changed: %v → %v", ot, nt)
	}
}

func statements(t testing.TB, d *Document) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, s := range d.stmts {
		var m map[string]any
		if err := json.Unmarshal(s.marshal(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// stripSub removes the sub keys (and operator blocks or a Condition left
// empty by that) from a decoded statement.
func stripSub(t testing.TB, s map[string]any, subKey string) map[string]any {
	t.Helper()
	c := map[string]any{}
	for k, v := range s {
		c[k] = v
	}
	cond, ok := c["Condition"].(map[string]any)
	if !ok {
		return c
	}
	nc := map[string]any{}
	for op, block := range cond {
		b, ok := block.(map[string]any)
		if !ok {
			nc[op] = block
			continue
		}
		nb := map[string]any{}
		for k, v := range b {
			if _, edited := subOperators[op]; edited && strings.EqualFold(k, subKey) {
				continue
			}
			nb[k] = v
		}
		if len(nb) > 0 {
			nc[op] = nb
		}
	}
	delete(c, "Condition")
	if len(nc) > 0 {
		c["Condition"] = nc
	}
	return c
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{`, `{"Version":"2012-10-17"}`, `{"Statement":"x"}`, `{"Statement":[1]}`,
		`{"Statement":[]} trailing`, `%7B%22Statement`, `%zz`,
		`{"Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/` + testProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"` + testProvider + `:sub":[1]}}}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/` + testProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"` + testProvider + `:sub":null}}}]}`,
	} {
		if _, err := Parse(in, testProvider); !errors.Is(err, ErrMalformedDocument) {
			t.Errorf("Parse(%q) = %v, want ErrMalformedDocument", in, err)
		}
	}
}

func TestRemoveNeverDropsTheCondition(t *testing.T) {
	in, err := os.ReadFile("testdata/documents/eks-basic.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(string(in), testProvider)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Remove(sa("run-1"), sa("run-2")); err != nil {
		t.Fatal(err)
	}
	if got := doc.Subjects(); len(got) != 0 {
		t.Fatalf("subjects %q, want none", got)
	}
	// The sub condition must remain and match nothing; without it every
	// service account of the cluster could assume the role.
	if !strings.Contains(doc.String(), `"`+testProvider+`:sub":[""]`) {
		t.Fatalf("placeholder missing: %s", doc)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	in, _ := os.ReadFile("testdata/documents/eks-basic.json")
	doc, err := Parse(string(in), testProvider)
	if err != nil {
		t.Fatal(err)
	}
	before := doc.String()
	c := doc.Clone()
	if _, err := c.Add(sa("run-9")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Remove(sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if doc.String() != before {
		t.Fatalf("editing the clone changed the original")
	}
	if c.String() == before {
		t.Fatalf("clone unchanged")
	}
}

func TestNormalizeProvider(t *testing.T) {
	for in, want := range map[string]string{
		"https://oidc.eks.us-west-2.amazonaws.com/id/ABC/": "oidc.eks.us-west-2.amazonaws.com/id/ABC",
		"oidc.eks.us-west-2.amazonaws.com/id/ABC":          "oidc.eks.us-west-2.amazonaws.com/id/ABC",
		"http://127.0.0.1:6000/dev/oidc":                   "127.0.0.1:6000/dev/oidc",
	} {
		if got := NormalizeProvider(in); got != want {
			t.Errorf("NormalizeProvider(%q) = %q, want %q", in, got, want)
		}
	}
}

// subject renders ns/sa in the exact or legacy form.
func subject(ns, sa string, legacy bool) string {
	return model.Subject{Namespace: ns, ServiceAccount: sa, Legacy: legacy}.String()
}
