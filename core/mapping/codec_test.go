package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

const (
	assetARN = "arn:aws:iam::524112250363:role/acme-list-bucket-role"
	proxyARN = "arn:aws:iam::946429944765:role/acme-list-bucket-role"
	asset2   = "arn:aws:iam::524112250363:role/acme-read-bucket-role"
	proxy2   = "arn:aws:iam::946429944765:role/acme-read-bucket-role"
)

func TestParseValue(t *testing.T) {
	single := `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `"`
	tests := []struct {
		name      string
		org       string
		value     string
		want      model.Mapping
		wantField string // non-empty: expect a *ValidationError on this field
	}{
		{"object flag missing means true", "acme", single + `}`,
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"object flag bool false", "acme", single + `, "update_iam_role_trust_policy": false}`,
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}}}, ""},
		{"object flag string False", "acme", single + `, "update_iam_role_trust_policy": "False"}`,
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}}}, ""},
		{"object flag string TRUE", "acme", single + `, "update_iam_role_trust_policy": "TRUE"}`,
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"object flag null means true", "acme", single + `, "update_iam_role_trust_policy": null}`,
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"unknown fields ignored", "acme", single + `, "comment": 3}`,
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"whitespace around", "acme", "\n  " + single + "}\n",
			model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"list of one is multi", "acme", `[` + single + `}]`,
			model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"list of two keeps order", "acme.team_1-x",
			`[{"iam_role_arn":"` + asset2 + `","proxy_iam_role_arn":"` + proxy2 + `","update_iam_role_trust_policy":"false"},` + single + `}]`,
			model.Mapping{Org: "acme.team_1-x", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: false}, {IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}, ""},
		{"flag number", "acme", single + `, "update_iam_role_trust_policy": 1}`, model.Mapping{}, "update_iam_role_trust_policy"},
		{"flag other string", "acme", single + `, "update_iam_role_trust_policy": "yes"}`, model.Mapping{}, "update_iam_role_trust_policy"},
		{"missing asset", "acme", `{"proxy_iam_role_arn": "` + proxyARN + `"}`, model.Mapping{}, "iam_role_arn"},
		{"asset not a string", "acme", `{"iam_role_arn": 5, "proxy_iam_role_arn": "` + proxyARN + `"}`, model.Mapping{}, "iam_role_arn"},
		{"bad proxy ARN", "acme", `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "arn:aws:iam::946429944765:user/x"}`, model.Mapping{}, "proxy_iam_role_arn"},
		{"bad account", "acme", `{"iam_role_arn": "arn:aws:iam::52411225036:role/x", "proxy_iam_role_arn": "` + proxyARN + `"}`, model.Mapping{}, "iam_role_arn"},
		{"wildcard role", "acme", `{"iam_role_arn": "arn:aws:iam::524112250363:role/*", "proxy_iam_role_arn": "` + proxyARN + `"}`, model.Mapping{}, "iam_role_arn"},
		{"bad element in list", "acme", `[` + single + `}, 3]`, model.Mapping{}, "mapping"},
		{"empty list", "acme", `[]`, model.Mapping{}, "role_data"},
		{"empty value", "acme", ``, model.Mapping{}, "mapping"},
		{"scalar", "acme", `"x"`, model.Mapping{}, "mapping"},
		{"trailing garbage", "acme", single + `} {}`, model.Mapping{}, "mapping"},
		{"bad org wildcard", "ac*me", single + `}`, model.Mapping{}, "domino_org"},
		{"bad org question mark", "acme?", single + `}`, model.Mapping{}, "domino_org"},
		{"bad org leading dot", ".acme", single + `}`, model.Mapping{}, "domino_org"},
		{"bad org slash", "a/b", single + `}`, model.Mapping{}, "domino_org"},
		{"bad org too long", strings.Repeat("a", 101), single + `}`, model.Mapping{}, "domino_org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseValue(tt.org, tt.value)
			if tt.wantField != "" {
				var ve *model.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want *ValidationError on %s", err, tt.wantField)
				}
				if ve.Field != tt.wantField {
					t.Fatalf("field = %q (%v), want %q", ve.Field, err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseValue: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOrgMaxLength(t *testing.T) {
	if err := model.ValidateOrg(strings.Repeat("a", 100)); err != nil {
		t.Fatalf("100 chars: %v", err)
	}
}

func TestValueFormats(t *testing.T) {
	one := model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}
	want := `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "update_iam_role_trust_policy": true}`
	if got := Value(one); got != want {
		t.Errorf("single:\n got %s\nwant %s", got, want)
	}
	multi := model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}, {IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: false}}}
	wantMulti := `[` + want + `, {"iam_role_arn": "` + asset2 + `", "proxy_iam_role_arn": "` + proxy2 + `", "update_iam_role_trust_policy": false}]`
	if got := Value(multi); got != wantMulti {
		t.Errorf("multi:\n got %s\nwant %s", got, wantMulti)
	}
	// Multi with one pair stays a list; two pairs without Multi are a list too.
	if got := Value(model.Mapping{Org: "a", Multi: true, Pairs: one.Pairs}); !strings.HasPrefix(got, "[") {
		t.Errorf("multi of one = %s, want a list", got)
	}
	if got := Value(model.Mapping{Org: "a", Pairs: multi.Pairs}); !strings.HasPrefix(got, "[") {
		t.Errorf("two pairs = %s, want a list", got)
	}
	// The value is valid JSON and parses back to the same mapping.
	for _, m := range []model.Mapping{one, multi} {
		if !json.Valid([]byte(Value(m))) {
			t.Errorf("invalid JSON: %s", Value(m))
		}
		back, err := ParseValue(m.Org, Value(m))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Errorf("round trip: %+v, %v; want %+v", back, err, m)
		}
	}
}

func TestMappingValidate(t *testing.T) {
	ok := model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}
	tests := []struct {
		m     model.Mapping
		field string
	}{
		{model.Mapping{Org: "acme", Pairs: []model.RolePair{ok}}, ""},
		{model.Mapping{Org: "acme", Pairs: nil}, "role_data"},
		{model.Mapping{Org: "", Pairs: []model.RolePair{ok}}, "domino_org"},
		{model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{ok, {IAMRoleARN: assetARN, ProxyIAMRoleARN: "", UpdateTrustPolicy: true}}}, "proxy_iam_role_arn"},
		{model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: "arn:aws-cn:iam::524112250363:role/a/b/x", ProxyIAMRoleARN: "arn:aws-us-gov:iam::946429944765:role/y", UpdateTrustPolicy: false}}}, ""},
		{model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: "arn:aws-xx:iam::524112250363:role/x", ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}}}, "iam_role_arn"},
	}
	for i, tt := range tests {
		err := tt.m.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%d: unexpected %v", i, err)
			}
			continue
		}
		var ve *model.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%d: err = %v, want field %s", i, err, tt.field)
		}
	}
}

func FuzzParseValue(f *testing.F) {
	f.Add("acme", `{"iam_role_arn": "`+assetARN+`", "proxy_iam_role_arn": "`+proxyARN+`"}`)
	f.Add("acme", `[{"iam_role_arn": "`+assetARN+`", "proxy_iam_role_arn": "`+proxyARN+`", "update_iam_role_trust_policy": "False"}]`)
	f.Add("a.b-c_d", `{"iam_role_arn": "arn:aws:iam::524112250363:role/p/q/x", "proxy_iam_role_arn": "`+proxyARN+`", "update_iam_role_trust_policy": false}`)
	f.Add("x", `[]`)
	f.Add("*", `{}`)
	f.Add("acme", `{"iam_role_arn": "\u0061rn:aws:iam::524112250363:role/x", "proxy_iam_role_arn": "`+proxyARN+`"}`)
	f.Fuzz(func(t *testing.T, org, value string) {
		m, ok := parsedValue(t, org, value)
		if !ok {
			return
		}
		if strings.ContainsAny(m.Org, "*?") {
			t.Fatalf("org with wildcard accepted: %q", m.Org)
		}
		roundTrips(t, org, m)
	})
}

// parsedValue is what the fuzz targets ask of ParseValue: a value it refuses
// is refused with a *ValidationError (ok false), and a mapping it returns
// validates.
func parsedValue(t *testing.T, org, value string) (m model.Mapping, ok bool) {
	t.Helper()
	m, err := ParseValue(org, value)
	if err != nil {
		var ve *model.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("error is not a *ValidationError: %v", err)
		}
		return model.Mapping{}, false
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("parsed mapping does not validate: %v", err)
	}
	return m, true
}

// roundTrips checks that m's value parses back to m.
func roundTrips(t *testing.T, org string, m model.Mapping) {
	t.Helper()
	back, err := ParseValue(org, Value(m))
	if err != nil {
		t.Fatalf("re-parse of %s: %v", Value(m), err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip changed the mapping: %+v -> %+v", m, back)
	}
}
