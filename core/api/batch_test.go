package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// TestPatchMappingsRequest: the HTTP layer alone: what PATCH /v2/mappings
// hands the use case, what it answers, and what it refuses before.
func TestPatchMappingsRequest(t *testing.T) {
	auth := map[string]string{"Authorization": "Bearer t"}
	with := func(h map[string]string) map[string]string {
		out := map[string]string{"Authorization": "Bearer t"}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	pair := model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}
	body := `{"put": [{"org": "b", "role_pairs": [` + pairJSON(proxyARN, `"true"`) + `]},
	                  {"org": "a", "role_pairs": [` + pairJSON(proxyARN, "") + `], "multi": true}],
	          "delete": ["c"]}`
	for _, tc := range []struct {
		name       string
		body       string
		header     map[string]string
		wantStatus int
		wantBatch  *model.Batch
		wantInBody string
	}{
		{"quoted If-Match", body, with(map[string]string{"If-Match": `"41"`}), 200,
			&model.Batch{Put: []model.Mapping{{Org: "b", Pairs: []model.RolePair{pair}}, {Org: "a", Multi: true, Pairs: []model.RolePair{pair}}}, Delete: []string{"c"}, IfRevision: "41"},
			`{"deleted":["c"],"put":["a","b"],"revision":"r4"}`},
		{"bare If-Match", `{"delete": ["c"]}`, with(map[string]string{"If-Match": "41"}), 200, &model.Batch{Delete: []string{"c"}, IfRevision: "41"}, `"revision":"r4"`},
		{"no precondition", `{"delete": ["c"]}`, auth, 200, &model.Batch{Delete: []string{"c"}}, `"revision":"r4"`},
		{"If-Match *", `{"delete": ["c"]}`, with(map[string]string{"If-Match": "*"}), 200, &model.Batch{Delete: []string{"c"}}, `"revision":"r4"`},
		{"weak If-Match", body, with(map[string]string{"If-Match": `W/"41"`}), 400, nil, "invalid_header"},
		{"If-Match list", body, with(map[string]string{"If-Match": `"41", "42"`}), 400, nil, "invalid_header"},
		{"empty batch", `{"put": [], "delete": []}`, auth, 400, nil, "missing_field"},
		{"unknown field", `{"puts": []}`, auth, 400, nil, "unknown field"},
		{"unknown field in an item", `{"put": [{"org": "a", "role_pairs": [], "multy": true}]}`, auth, 400, nil, "multy"},
		{"no org", `{"put": [{"role_pairs": [` + pairJSON(proxyARN, "") + `]}]}`, auth, 400, nil, "put[0]: org is required"},
		{"no pairs", `{"put": [{"org": "a"}]}`, auth, 400, nil, `org \"a\": role_pairs is required`},
		{"pairs not a list", `{"put": [{"org": "a", "role_pairs": {}}]}`, auth, 400, nil, `org \"a\": field \"role_pairs\" must be a list`},
		{"bad flag names the org", `{"put": [{"org": "a", "role_pairs": [` + pairJSON(proxyARN, `"maybe"`) + `]}]}`, auth, 400, nil, `org \"a\": `},
		{"no credentials", body, nil, 401, nil, "unauthenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeService()
			r := do(t, serve(t, f), "PATCH", brokerapi.PathV2Mappings, tc.body, tc.header)
			if r.status != tc.wantStatus || !strings.Contains(string(r.body), tc.wantInBody) {
				t.Fatalf("%d %s; want %d with %s", r.status, r.body, tc.wantStatus, tc.wantInBody)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if tc.wantBatch == nil {
				if len(f.batches) > 0 {
					t.Errorf("a refused request reached the use case: %+v", f.batches)
				}
				return
			}
			if len(f.batches) != 1 || !reflect.DeepEqual(f.batches[0], *tc.wantBatch) {
				t.Errorf("use case got %+v, want %+v", f.batches, *tc.wantBatch)
			}
			if r.header.Get("ETag") != `"r4"` {
				t.Errorf("ETag %q", r.header.Get("ETag"))
			}
		})
	}
	// The use case's errors, by kind.
	for kind, status := range map[model.Kind]int{model.KindPrecondition: 412, model.KindMisconfigured: 502, model.KindConflict: 409, model.KindForbidden: 403, model.KindNotFound: 404} {
		f := newFakeService()
		f.err = model.Errorf(kind, "x", "no")
		if r := do(t, serve(t, f), "PATCH", brokerapi.PathV2Mappings, body, auth); r.status != status {
			t.Errorf("%v: %d %s, want %d", kind, r.status, r.body, status)
		}
	}
}

// TestPatchMappings: the batch route on the dev stack. Only admins write;
// a refused org or a stale revision writes nothing; the batch applies in one
// revision, which GET answers as its ETag.
func TestPatchMappings(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	const (
		asset = "arn:aws:iam::524112250363:role/"
		proxy = "arn:aws:iam::946429944765:role/"
	)
	list := func() (string, string) {
		t.Helper()
		r := call(t, st, "GET", brokerapi.PathV2Mappings, admin, "")
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var out struct {
			Revision string `json:"revision"`
		}
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatal(err)
		}
		if r.header.Get("ETag") != `"`+out.Revision+`"` {
			t.Errorf("ETag %q for revision %q", r.header.Get("ETag"), out.Revision)
		}
		return r.body, out.Revision
	}
	item := func(org, role string) string {
		return `{"org": "` + org + `", "role_pairs": [{"iam_role_arn": "` + asset + role + `", "proxy_iam_role_arn": "` + proxy + role + `"}]}`
	}
	before, rev := list()

	// A proxy role IAM does not have: refused naming the org, nothing written.
	bad := `{"put": [` + item("aaa-new", "acme-read-bucket-role") + `, ` + item("zzz-bad", "nope") + `], "delete": ["irsa-iamrole-list-bucket"]}`
	r := call(t, st, "PATCH", brokerapi.PathV2Mappings, admin, bad, "If-Match", `"`+rev+`"`)
	if r.status != http.StatusConflict && r.status != http.StatusBadGateway || !strings.Contains(r.body, `org \"zzz-bad\"`) {
		t.Fatalf("refused org: %d %s", r.status, r.body)
	}
	if after, _ := list(); after != before {
		t.Fatalf("a refused batch wrote:\n%s\nwant:\n%s", after, before)
	}
	// Not an admin.
	good := `{"put": [` + item("aaa-new", "acme-read-bucket-role") + `], "delete": ["irsa-iamrole-list-bucket"]}`
	if r := call(t, st, "PATCH", brokerapi.PathV2Mappings, alice, good, "If-Match", rev); r.status != http.StatusForbidden || r.errorCode(t) != "forbidden" {
		t.Fatalf("alice: %d %s", r.status, r.body)
	}
	// A stale revision.
	if r := call(t, st, "PATCH", brokerapi.PathV2Mappings, admin, good, "If-Match", rev+"9"); r.status != http.StatusPreconditionFailed || r.errorCode(t) != "revision_mismatch" {
		t.Fatalf("stale revision: %d %s", r.status, r.body)
	}
	if after, _ := list(); after != before {
		t.Fatalf("refused batches wrote:\n%s\nwant:\n%s", after, before)
	}
	// At the read revision: applied, in one new revision.
	r = call(t, st, "PATCH", brokerapi.PathV2Mappings, admin, good, "If-Match", rev)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	after, rev2 := list()
	if !strings.Contains(r.body, `"revision":"`+rev2+`"`) || rev2 == rev || strings.Contains(after, `"irsa-iamrole-list-bucket"`) || !strings.Contains(after, `"aaa-new"`) {
		t.Fatalf("answer %s; after: %s", r.body, after)
	}
	// The same batch again, at the old revision: 412.
	if r := call(t, st, "PATCH", brokerapi.PathV2Mappings, admin, good, "If-Match", rev); r.status != http.StatusPreconditionFailed {
		t.Fatalf("replayed batch: %d %s", r.status, r.body)
	}
}
