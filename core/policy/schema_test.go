package policy

import (
	"context"
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/irsa-broker/irsa-broker/policies"
)

const typoPolicy = `package irsa.grants

grants contains pair if {
	some org in input.identity.organisations
	some pair in data.mappings[org]
}
`

// TestSchemaRefusesTypo: a policy naming an input field the schema does not
// have fails to compile, with its file and line, at start and at reload
// (where the last good policy keeps serving).
func TestSchemaRefusesTypo(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "grants.rego", typoPolicy)
	_, err := New(context.Background(), Options{PolicyDir: dir})
	if err == nil {
		t.Fatal("a policy reading input.identity.organisations compiled")
	}
	for _, want := range []string{"grants.rego:4", "rego_type_error", "organisations"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	writePolicy(t, dir, "grants.rego", strings.ReplaceAll(typoPolicy, "organisations", "organizations"))
	e := newEngine(t, Options{PolicyDir: dir})
	good := e.Revision()
	writePolicy(t, dir, "grants.rego", typoPolicy)
	if err := e.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "grants.rego:4") {
		t.Fatalf("reload of the typo: %v", err)
	}
	if e.Revision() != good || e.Status().ReloadError == "" {
		t.Errorf("after a refused reload: revision %s (want %s), status %+v", e.Revision(), good, e.Status())
	}
	if got := mustGrants(t, e, user("list"), testSnapshot()); len(got) != 1 {
		t.Errorf("the last good policy does not serve: %v", got)
	}
}

// TestInputSchemaMatchesInput keeps policies/schema/input.json in step with
// the Input type: every JSON field of Input is in the schema and the schema
// names no field Input lacks.
func TestInputSchemaMatchesInput(t *testing.T) {
	b, err := fs.ReadFile(policies.SchemaFS, "schema/input.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var fromSchema, fromType []string
	var walkSchema func(prefix string, s map[string]any)
	walkSchema = func(prefix string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for name, p := range props {
			fromSchema = append(fromSchema, prefix+name)
			walkSchema(prefix+name+".", p.(map[string]any))
		}
	}
	walkSchema("", schema)
	timeType := reflect.TypeOf(time.Time{})
	var walkType func(prefix string, t reflect.Type)
	walkType = func(prefix string, t reflect.Type) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			fromType = append(fromType, prefix+name)
			if f.Type.Kind() == reflect.Struct && f.Type != timeType {
				walkType(prefix+name+".", f.Type)
			}
		}
	}
	walkType("", reflect.TypeOf(Input{}))
	slices.Sort(fromSchema)
	slices.Sort(fromType)
	if !slices.Equal(fromSchema, fromType) {
		t.Errorf("policies/schema/input.json and policy.Input differ:\nschema: %v\nInput:  %v", fromSchema, fromType)
	}
	// And the encoder of the input document agrees with the type.
	in := user("a")
	in.Identity.Email, in.Identity.Groups, in.Identity.Attributes, in.Identity.Provider = "a@b", []string{"g"}, map[string]string{"k": "v"}, "static"
	in.Workload.Type, in.Workload.Pod, in.Workload.Labels, in.Request.ID = "edge-workload", "p", map[string]string{"l": "v"}, "r"
	doc, err := ast.JSON(inputValue(in))
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var fromDoc []string
	for k, sub := range got {
		fromDoc = append(fromDoc, k)
		for kk := range sub {
			fromDoc = append(fromDoc, k+"."+kk)
		}
	}
	slices.Sort(fromDoc)
	if !slices.Equal(fromDoc, fromType) {
		t.Errorf("the input document has %v, Input %v", fromDoc, fromType)
	}
}
