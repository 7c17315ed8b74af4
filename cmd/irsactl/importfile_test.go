package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

const (
	pairA = `{"iam_role_arn": "arn:aws:iam::524112250363:role/a", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/a"}`
	pairB = `{"iam_role_arn": "arn:aws:iam::524112250363:role/b", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/b", "update_iam_role_trust_policy": "False"}`
)

func TestParseMappingsFile(t *testing.T) {
	a := model.RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/a", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/a", UpdateTrustPolicy: true}
	b := model.RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/b", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/b"}
	want := []model.Mapping{
		{Org: "multi", Pairs: []model.RolePair{a, b}, Multi: true},
		{Org: "one-list", Pairs: []model.RolePair{a}, Multi: true},
		{Org: "single", Pairs: []model.RolePair{b}},
	}
	q := func(s string) string { return `'` + s + `'` }
	for _, tc := range []struct{ name, format, text string }{
		{"v2", fileV2, `{"mappings": [{"org": "single", "role_pairs": [` + pairB + `]},
			{"org": "one-list", "multi": true, "role_pairs": [` + pairA + `]},
			{"org": "multi", "role_pairs": [` + pairA + `, ` + pairB + `]}], "revision": "3"}`},
		{"configmap yaml", fileConfigMap, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: domino-org-iamrole-mapping\n  resourceVersion: \"42\"\ndata:\n" +
			"  single: " + q(pairB) + "\n  one-list: " + q("["+pairA+"]") + "\n  multi: " + q("["+pairA+", "+pairB+"]") + "\n"},
		{"configmap data", fileConfigMap, `{"single": ` + jsonQuote(pairB) + `, "one-list": ` + jsonQuote("["+pairA+"]") + `, "multi": ` + jsonQuote("["+pairA+","+pairB+"]") + `}`},
		{"legacy GET", fileLegacyGET, `{"all_role_mappings": {"single": ` + pairB + `, "one-list": [` + pairA + `], "multi": [` + pairA + `, ` + pairB + `]}}`},
		{"by org, objects", fileConfigMap, `{"single": ` + pairB + `, "one-list": [` + pairA + `], "multi": [` + pairA + `, ` + pairB + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, format, err := parseMappingsFile([]byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if format != tc.format {
				t.Errorf("format %q, want %q", format, tc.format)
			}
			if !slices.EqualFunc(got, want, func(x, y model.Mapping) bool {
				return x.Org == y.Org && x.Multi == y.Multi && slices.Equal(x.Pairs, y.Pairs)
			}) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	for _, tc := range []struct{ name, text, want string }{
		{"empty", " \n", "empty"},
		{"list", `[1]`, "want an object"},
		{"bad org", `{"a b": ` + jsonQuote(pairA) + `}`, "invalid organization name"},
		{"bad arn", `{"x": {"iam_role_arn": "arn:aws:s3:::b", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/a"}}`, "iam_role_arn"},
		{"duplicate v2", `{"mappings": [{"org": "x", "role_pairs": [` + pairA + `]}, {"org": "x", "role_pairs": [` + pairA + `]}]}`, "more than once"},
		{"v2 pairs not a list", `{"mappings": [{"org": "x", "role_pairs": ` + pairA + `}]}`, "list"},
		{"v2 no pairs", `{"mappings": [{"org": "x", "role_pairs": []}]}`, "at least one"},
		{"other kind", `{"kind": "Secret", "data": {}}`, "want a ConfigMap"},
		{"bad flag", `{"x": {"iam_role_arn": "arn:aws:iam::1:role/a", "proxy_iam_role_arn": "arn:aws:iam::1:role/a", "update_iam_role_trust_policy": "yes"}}`, "update_iam_role_trust_policy"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			if _, _, err := parseMappingsFile([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func jsonQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// FuzzParseMappingsFile: no input panics, and whatever parses survives the
// ConfigMap export unchanged (export → import is the identity).
func FuzzParseMappingsFile(f *testing.F) {
	f.Add([]byte(`{"mappings": [{"org": "a", "role_pairs": [` + pairA + `]}]}`))
	f.Add([]byte(`{"all_role_mappings": {"a": [` + pairA + `, ` + pairB + `]}}`))
	f.Add([]byte("kind: ConfigMap\ndata:\n  a: '" + pairB + "'\n"))
	f.Add([]byte(`{"a": ` + jsonQuote(pairA) + `}`))
	f.Add([]byte(`{"mappings": {}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _, err := parseMappingsFile(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if err := m.Validate(); err != nil {
				t.Fatalf("parsed an invalid mapping %+v: %v", m, err)
			}
		}
		out, err := configMapFile(ms)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := parseMappingsFile(out)
		if err != nil {
			t.Fatalf("re-import of the export: %v\n%s", err, out)
		}
		if !slices.EqualFunc(ms, back, func(x, y model.Mapping) bool {
			return x.Org == y.Org && sameMapping(x, y)
		}) {
			t.Fatalf("round trip changed the mappings:\n%+v\n%+v", ms, back)
		}
	})
}
