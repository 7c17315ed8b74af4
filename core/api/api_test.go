package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

const (
	alice = "alice-token"
	bob   = "bob-token"
	carol = "carol-token"
	admin = "admin-token"
)

type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// errorCode checks the uniform error shape and returns its code.
func (r resp) errorCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok || e["code"] == "" || e["message"] == "" || e["request_id"] == "" {
		t.Fatalf("not an error body: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return e["code"].(string)
}

func call(t *testing.T, st *devstack.Stack, method, path, token, body string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, st.BrokerURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func subjectsOf(t *testing.T, st *devstack.Stack, role string) string {
	t.Helper()
	doc, err := st.Sim.TrustPolicy(devstack.EKSAccount, role)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestHealthz(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	r := call(t, st, "GET", "/healthz", "", "")
	if r.status != 200 || r.body != "{'status': 'Healthy'}" {
		t.Fatalf("healthz = %d %q", r.status, r.body)
	}
	r = call(t, st, "GET", "/healthz", "", "", "Accept", "application/json")
	if r.status != 200 || r.json(t)["status"] != "Healthy" {
		t.Fatalf("healthz json = %d %q", r.status, r.body)
	}
	r = call(t, st, "GET", "/readyz", "", "")
	if r.status != 200 {
		t.Fatalf("readyz = %d %s", r.status, r.body)
	}
}

// TestMapThenAssume is the whole flow: map a run, then the AWS SDK's own
// credential chain uses the rendered config against the simulator.
func TestMapThenAssume(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"run1"}`)
	if r.status != 200 {
		t.Fatalf("map = %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, accept := range []string{"*/*", "text/plain, application/json"} {
		if again := call(t, st, "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"run1"}`, "Accept", accept); again.body != r.body {
			t.Errorf("Accept %q: got %q", accept, again.body)
		}
	}
	want, err := os.ReadFile("testdata/alice-run1.config.golden")
	if err != nil {
		t.Fatal(err)
	}
	if r.body != string(want) {
		t.Fatalf("config differs from golden:\n got:\n%s\nwant:\n%s", r.body, want)
	}
	const subject = "system:serviceaccount:domino-compute:run-run1"
	for _, role := range []string{"acme-list-bucket-role", "acme-read-bucket-role"} {
		if doc := subjectsOf(t, st, role); !strings.Contains(doc, subject) {
			t.Errorf("%s trust policy lacks %s: %s", role, subject, doc)
		}
	}
	if doc := subjectsOf(t, st, "acme-update-bucket-role"); strings.Contains(doc, subject) {
		t.Errorf("alice is not in the update org, yet its proxy role got the subject: %s", doc)
	}

	// The pod's view: token file + config, and nothing but the SDK.
	dir := t.TempDir()
	tok := call(t, st, "GET", "/dev/workload-token?run_id=run1", "", "")
	if tok.status != 200 {
		t.Fatalf("workload token = %d %s", tok.status, tok.body)
	}
	tokenFile := filepath.Join(dir, "token")
	cfgFile := filepath.Join(dir, "config")
	os.WriteFile(tokenFile, []byte(tok.body), 0o600)
	os.WriteFile(cfgFile, []byte(strings.ReplaceAll(r.body, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", tokenFile)), 0o600)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ENDPOINT_URL_STS", st.AWSURL)
	t.Setenv("AWS_REGION", devstack.Region)
	ctx := context.Background()
	for _, role := range []string{"acme-list-bucket-role", "acme-read-bucket-role"} {
		cfg, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigProfile(role))
		if err != nil {
			t.Fatal(err)
		}
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("%s: GetCallerIdentity through the chain: %v", role, err)
		}
		if want := "arn:aws:sts::" + devstack.AssetsAccount + ":assumed-role/" + role + "/"; !strings.HasPrefix(*id.Arn, want) {
			t.Errorf("%s: caller = %s, want prefix %s", role, *id.Arn, want)
		}
	}
}

func TestMapJSONAndEmpty(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, `{"run_id":"run2","irsa_workload_type":"cluster-worker"}`, "Accept", "application/json")
	if r.status != 200 {
		t.Fatalf("map = %d %s", r.status, r.body)
	}
	m := r.json(t)
	grants := m["grants"].([]any)
	if len(grants) != 1 || grants[0].(map[string]any)["org"] != "irsa-iamrole-update-bucket" {
		t.Fatalf("grants = %v", grants)
	}
	if !strings.Contains(m["config"].(string), "[profile acme-update-bucket-role]\n") {
		t.Fatalf("config = %q", m["config"])
	}
	// No grants: 200 and an empty config, and IAM untouched.
	st.Sim.ResetCalls()
	r = call(t, st, "POST", "/map_iam_roles_to_pod_sa", carol, `{"run_id":"run3"}`)
	if r.status != 200 || r.body != "" {
		t.Fatalf("no grants = %d %q", r.status, r.body)
	}
	if n := st.Sim.Calls()["UpdateAssumeRolePolicy"]; n != 0 {
		t.Fatalf("UpdateAssumeRolePolicy called %d times for a user without grants", n)
	}
}

// TestBadInput: every malformed request gets a JSON error and changes nothing.
func TestBadInput(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	big := `{"run_id":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name, method, path, token, body string
		hdr                             []string
		status                          int
		code                            string
	}{
		{"no credentials", "POST", "/map_iam_roles_to_pod_sa", "", `{"run_id":"r1"}`, nil, 401, "unauthenticated"},
		{"bad token", "POST", "/map_iam_roles_to_pod_sa", "nope", `{"run_id":"r1"}`, nil, 401, "unauthenticated"},
		{"basic auth", "POST", "/map_iam_roles_to_pod_sa", "", `{"run_id":"r1"}`, []string{"Authorization", "Basic YTpi"}, 401, "unauthenticated"},
		{"bad api key", "GET", "/my_role_mappings", "", "", []string{"X-Domino-Api-Key", "nope"}, 401, "unauthenticated"},
		{"not json", "POST", "/map_iam_roles_to_pod_sa", alice, `run_id=r1`, nil, 400, "invalid_json"},
		{"empty body", "POST", "/map_iam_roles_to_pod_sa", alice, ``, nil, 400, "invalid_json"},
		{"two objects", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"r1"}{}`, nil, 400, "invalid_json"},
		{"missing run_id", "POST", "/map_iam_roles_to_pod_sa", alice, `{}`, nil, 400, "missing_field"},
		{"run_id number", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":12}`, nil, 400, "invalid_field"},
		{"run_id wildcard", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"*"}`, nil, 400, "invalid_run_id"},
		{"run_id question", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"ru?1"}`, nil, 400, "invalid_run_id"},
		{"run_id colon", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"a:b"}`, nil, 400, "invalid_run_id"},
		{"run_id upper", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"RUN1"}`, nil, 400, "invalid_run_id"},
		{"run_id empty", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":""}`, nil, 400, "invalid_run_id"},
		{"bad workload type", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"r1","irsa_workload_type":"gpu"}`, nil, 400, "invalid_workload_type"},
		{"form body", "POST", "/map_iam_roles_to_pod_sa", alice, `run_id=r1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "invalid_json"},
		{"json array", "POST", "/map_iam_roles_to_pod_sa", alice, `[{"run_id":"r1"}]`, nil, 400, "invalid_json"},
		{"null", "POST", "/map_iam_roles_to_pod_sa", alice, `null`, nil, 400, "missing_field"},
		{"too large", "POST", "/map_iam_roles_to_pod_sa", alice, big, nil, 413, "body_too_large"},
		{"unknown path", "GET", "/nope", alice, "", nil, 404, "not_found"},
		{"wrong method", "GET", "/map_iam_roles_to_pod_sa", alice, "", nil, 405, "method_not_allowed"},
		{"admin only list", "GET", "/role_mappings", alice, "", nil, 403, "forbidden"},
		{"admin only update", "POST", "/update_role_mapping", alice, `{"domino_org":"x","iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/a"}`, nil, 403, "forbidden"},
		{"invalid arn", "POST", "/update_role_mapping", admin, `{"domino_org":"x","iam_role_arn":"arn:aws:iam::123:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/a"}`, nil, 400, "invalid_mapping"},
		{"wildcard arn", "POST", "/update_role_mapping", admin, `{"domino_org":"x","iam_role_arn":"arn:aws:iam::524112250363:role/*","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/a"}`, nil, 400, "invalid_mapping"},
		{"bad flag", "POST", "/update_role_mapping", admin, `{"domino_org":"x","iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/a","update_iam_role_trust_policy":"maybe"}`, nil, 400, ""},
		{"missing org", "POST", "/update_role_mapping", admin, `{"iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/a"}`, nil, 400, "missing_field"},
		{"multirole not list", "POST", "/update_multirole_mapping", admin, `{"domino_org":"x","role_data":{}}`, nil, 400, "invalid_field"},
		{"delete unknown org", "DELETE", "/delete_role_mapping", admin, `{"domino_org":"no-such-org"}`, nil, 404, "mapping_not_found"},
		{"bad sa name", "POST", "/service_account", admin, `{"service_account_name":"Bad_Name"}`, nil, 400, "invalid_service_account_name"},
		{"sa non-admin", "POST", "/service_account", alice, `{"service_account_name":"alice"}`, nil, 403, "forbidden"},
		{"v2 unknown field", "PUT", "/v2/mappings/x", admin, `{"role_pairs":[],"extra":1}`, nil, 400, "invalid_json"},
		// Keys are exact (issue 11, item 8): encoding/json alone lets the last
		// duplicate win and matches keys case-insensitively.
		{"duplicate run_id", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"run1","run_id":"run2"}`, nil, 400, "duplicate_field"},
		{"run_id case variant", "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"run1","RUN_ID":"run2"}`, nil, 400, "invalid_field"},
		{"run_id upper key", "POST", "/map_iam_roles_to_pod_sa", alice, `{"RUN_ID":"run2"}`, nil, 400, "invalid_field"},
		{"v2 map upper key", "POST", "/v2/map", alice, `{"Run_Id":"run2"}`, nil, 400, "invalid_field"},
		{"v2 preview duplicate", "POST", "/v2/preview", alice, `{"run_id":"run1","run_id":"run2"}`, nil, 400, "duplicate_field"},
		{"duplicate org", "POST", "/update_role_mapping", admin, `{"domino_org":"irsa-iamrole-list-bucket","domino_org":"x","iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-read-bucket-role"}`, nil, 400, "duplicate_field"},
		{"nested duplicate", "POST", "/update_multirole_mapping", admin, `{"domino_org":"x","role_data":[{"iam_role_arn":"arn:aws:iam::524112250363:role/a","iam_role_arn":"arn:aws:iam::524112250363:role/b","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-read-bucket-role"}]}`, nil, 400, "duplicate_field"},
		{"v2 pairs duplicate", "PUT", "/v2/mappings/x", admin, `{"role_pairs":[{"iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-read-bucket-role","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-list-bucket-role"}]}`, nil, 400, "duplicate_field"},
		{"duplicate sa name", "POST", "/service_account", admin, `{"service_account_name":"a","service_account_name":"b"}`, nil, 400, "duplicate_field"},
	}
	before := st.Sim.Calls()["UpdateAssumeRolePolicy"]
	mappingsBefore := call(t, st, "GET", "/role_mappings", admin, "").body
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, st, c.method, c.path, c.token, c.body, c.hdr...)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d: %s", r.status, c.status, r.body)
			}
			code := r.errorCode(t)
			if c.code != "" && code != c.code {
				t.Fatalf("code = %q, want %q (%s)", code, c.code, r.body)
			}
			if strings.Contains(r.body, "alice-token") || strings.Contains(r.body, "goroutine") {
				t.Fatalf("error body leaks: %s", r.body)
			}
		})
	}
	if after := st.Sim.Calls()["UpdateAssumeRolePolicy"]; after != before {
		t.Errorf("bad input wrote trust policies: %d → %d", before, after)
	}
	if after := call(t, st, "GET", "/role_mappings", admin, "").body; after != mappingsBefore {
		t.Errorf("bad input changed mappings:\n%s\n→\n%s", mappingsBefore, after)
	}
}

func TestAdminMappings(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{Empty: true})
	r := call(t, st, "GET", "/role_mappings", admin, "")
	if r.status != 200 || r.body != "{\"all_role_mappings\":{}}\n" {
		t.Fatalf("empty list = %d %q", r.status, r.body)
	}
	r = call(t, st, "POST", "/update_role_mapping", admin, `{"domino_org":"irsa-iamrole-list-bucket","iam_role_arn":"arn:aws:iam::524112250363:role/acme-list-bucket-role","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-list-bucket-role","update_iam_role_trust_policy":"false"}`)
	if r.status != 200 {
		t.Fatalf("update = %d %s", r.status, r.body)
	}
	r = call(t, st, "POST", "/update_multirole_mapping", admin, `{"domino_org":"irsa-iamrole-read-bucket","role_data":[
		{"iam_role_arn":"arn:aws:iam::524112250363:role/acme-read-bucket-role","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-read-bucket-role"},
		{"iam_role_arn":"arn:aws:iam::524112250363:role/acme-update-bucket-role","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-update-bucket-role","update_iam_role_trust_policy":true}]}`)
	if r.status != 200 {
		t.Fatalf("multirole = %d %s", r.status, r.body)
	}
	r = call(t, st, "GET", "/role_mappings", admin, "")
	var all struct {
		All map[string]json.RawMessage `json:"all_role_mappings"`
	}
	if err := json.Unmarshal([]byte(r.body), &all); err != nil {
		t.Fatal(err)
	}
	var single map[string]any
	if err := json.Unmarshal(all.All["irsa-iamrole-list-bucket"], &single); err != nil {
		t.Fatalf("single-pair org must be an object: %s", all.All["irsa-iamrole-list-bucket"])
	}
	if single["update_iam_role_trust_policy"] != false {
		t.Errorf("flag \"false\" read as %v", single["update_iam_role_trust_policy"])
	}
	var multi []map[string]any
	if err := json.Unmarshal(all.All["irsa-iamrole-read-bucket"], &multi); err != nil || len(multi) != 2 {
		t.Fatalf("multi-role org must be a list of 2: %s", all.All["irsa-iamrole-read-bucket"])
	}
	if multi[0]["update_iam_role_trust_policy"] != true {
		t.Errorf("missing flag must default to true: %v", multi[0])
	}
	// alice is in both orgs: my_role_mappings shows the same shapes.
	r = call(t, st, "GET", "/my_role_mappings", alice, "")
	var mine struct {
		Mine map[string]json.RawMessage `json:"my_role_mappings"`
	}
	json.Unmarshal([]byte(r.body), &mine)
	if len(mine.Mine) != 2 || mine.Mine["irsa-iamrole-read-bucket"][0] != '[' || mine.Mine["irsa-iamrole-list-bucket"][0] != '{' {
		t.Fatalf("my_role_mappings = %s", r.body)
	}
	// A mapping with the flag off renders but does not touch the trust policy.
	st.Sim.ResetCalls()
	r = call(t, st, "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"r9"}`)
	if r.status != 200 || strings.Count(r.body, "[profile src_") != 3 {
		t.Fatalf("map = %d %s", r.status, r.body)
	}
	if doc := subjectsOf(t, st, "acme-list-bucket-role"); strings.Contains(doc, "run-r9") {
		t.Errorf("flag false, yet the subject was written: %s", doc)
	}
	if doc := subjectsOf(t, st, "acme-update-bucket-role"); !strings.Contains(doc, "run-r9") {
		t.Errorf("subject missing on the multi-role org's second proxy: %s", doc)
	}
	r = call(t, st, "DELETE", "/delete_role_mapping", admin, `{"domino_org":"irsa-iamrole-read-bucket"}`)
	if r.status != 200 {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	r = call(t, st, "GET", "/my_role_mappings", alice, "")
	if strings.Contains(r.body, "irsa-iamrole-read-bucket") {
		t.Fatalf("deleted org still shown: %s", r.body)
	}
	// Service accounts.
	if r = call(t, st, "POST", "/service_account", admin, `{"service_account_name":"alice"}`); r.status != 200 {
		t.Fatalf("create sa = %d %s", r.status, r.body)
	}
	if r = call(t, st, "DELETE", "/service_account", admin, `{"service_account_name":"alice"}`); r.status != 200 {
		t.Fatalf("delete sa = %d %s", r.status, r.body)
	}
	if r = call(t, st, "DELETE", "/service_account", admin, `{"service_account_name":"alice"}`); r.status != 404 {
		t.Fatalf("delete unknown sa = %d %s", r.status, r.body)
	}
}

func TestV2(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	r := call(t, st, "GET", "/v2/mappings", admin, "")
	var list struct {
		Mappings []struct {
			Org       string           `json:"org"`
			RolePairs []map[string]any `json:"role_pairs"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Mappings) != 3 {
		t.Fatalf("v2 list = %d %s", r.status, r.body)
	}
	for _, m := range list.Mappings {
		if len(m.RolePairs) != 1 {
			t.Errorf("%s: role_pairs = %v", m.Org, m.RolePairs)
		}
	}
	r = call(t, st, "PUT", "/v2/mappings/data-team", admin, `{"role_pairs":[{"iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-read-bucket-role"}]}`)
	if r.status != 200 || r.json(t)["org"] != "data-team" {
		t.Fatalf("v2 put = %d %s", r.status, r.body)
	}
	if r = call(t, st, "GET", "/v2/mappings/data-team", admin, ""); r.status != 200 || !strings.Contains(r.body, `"update_iam_role_trust_policy":true`) {
		t.Fatalf("v2 get = %d %s", r.status, r.body)
	}
	if r = call(t, st, "DELETE", "/v2/mappings/data-team", admin, ""); r.status != 204 {
		t.Fatalf("v2 delete = %d %s", r.status, r.body)
	}
	if r = call(t, st, "GET", "/v2/mappings/data-team", admin, ""); r.status != 404 {
		t.Fatalf("v2 get deleted = %d %s", r.status, r.body)
	}
	if r = call(t, st, "GET", "/v2/grants", alice, ""); r.status != 200 || len(r.json(t)["grants"].([]any)) != 2 {
		t.Fatalf("v2 grants = %d %s", r.status, r.body)
	}
	if r = call(t, st, "GET", "/v2/whoami", alice, ""); r.status != 200 || r.json(t)["username"] != "alice" {
		t.Fatalf("v2 whoami = %d %s", r.status, r.body)
	}
	// Preview decides and renders but never writes.
	st.Sim.ResetCalls()
	r = call(t, st, "POST", "/v2/preview", alice, `{"run_id":"prev1"}`)
	if r.status != 200 || r.json(t)["dry_run"] != true || !strings.Contains(r.json(t)["config"].(string), "acme-read-bucket-role") {
		t.Fatalf("preview = %d %s", r.status, r.body)
	}
	if n := st.Sim.Calls()["UpdateAssumeRolePolicy"] + st.Sim.Calls()["GetRole"]; n != 0 {
		t.Fatalf("preview called IAM %d times", n)
	}
	if doc := subjectsOf(t, st, "acme-read-bucket-role"); strings.Contains(doc, "prev1") {
		t.Fatalf("preview wrote the subject: %s", doc)
	}
	if r = call(t, st, "POST", "/v2/map", alice, `{"run_id":"v2run"}`); r.status != 200 || r.json(t)["subject"] != "system:serviceaccount:domino-compute:run-v2run" {
		t.Fatalf("v2 map = %d %s", r.status, r.body)
	}
}

// TestIAMRefusal: the broker's key lacks iam:UpdateAssumeRolePolicy; the caller
// gets 502 naming the action, the role and AWS's reason.
func TestIAMRefusal(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{DeniedIAMActions: []string{"iam:UpdateAssumeRolePolicy"}})
	r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, `{"run_id":"r1"}`)
	if r.status != 502 {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	if code := r.errorCode(t); code != "iam_access_denied" {
		t.Fatalf("code = %s", code)
	}
	for _, want := range []string{"iam:UpdateAssumeRolePolicy", "acme-update-bucket-role", "not authorized"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("message lacks %q: %s", want, r.body)
		}
	}
}

// TestTrustPolicyTooLarge: over the quota the caller gets 409 naming the role,
// the size and the quota, and the policy is unchanged.
func TestTrustPolicyTooLarge(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	before := subjectsOf(t, st, "acme-update-bucket-role")
	st.Sim.SetQuota(devstack.EKSAccount, len(strings.Join(strings.Fields(before), ""))+10)
	r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, `{"run_id":"a-rather-long-run-identifier-0001"}`)
	if r.status != 409 || r.errorCode(t) != "trust_policy_too_large" || !strings.Contains(r.body, "acme-update-bucket-role") {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	if after := subjectsOf(t, st, "acme-update-bucket-role"); after != before {
		t.Fatalf("policy changed on a refused write:\n%s\n%s", before, after)
	}
}

// TestConcurrentMaps: many runs at once; no subject is lost.
func TestConcurrentMaps(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	st.Sim.SetQuota(devstack.EKSAccount, 100000)
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", st.BrokerURL+"/map_iam_roles_to_pod_sa", strings.NewReader(fmt.Sprintf(`{"run_id":"c%03d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+alice)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				errs <- res.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, role := range []string{"acme-list-bucket-role", "acme-read-bucket-role"} {
		doc := subjectsOf(t, st, role)
		for i := range n {
			if s := fmt.Sprintf("system:serviceaccount:domino-compute:run-c%03d", i); !strings.Contains(doc, s) {
				t.Errorf("%s lost %s", role, s)
			}
		}
	}
	if w := st.Sim.Calls()["UpdateAssumeRolePolicy"]; w >= 2*n {
		t.Errorf("%d writes for %d requests over 2 roles: no coalescing", w, n)
	}
}

func TestLegacyMetrics(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	call(t, st, "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"m1"}`)
	call(t, st, "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"*"}`)
	r := call(t, st, "GET", "/metrics", "", "")
	for _, name := range []string{
		"irsa_query_config_map_org_to_iamrole_mapping_total", "irsa_query_user_org_membership_total",
		"irsa_failed_query_user_org_membership_total", "irsa_query_user_principal_total",
		"irsa_failed_query_user_principal_total", "irsa_mapping_requests_total 2", "irsa_failed_maping_requests_total 1",
		"irsa_http_request_duration_seconds_bucket", "irsa_map_duration_seconds_bucket",
	} {
		if !strings.Contains(r.body, name) {
			t.Errorf("metrics lack %q", name)
		}
	}
	if strings.Contains(r.body, "alice-token") {
		t.Error("metrics leak a token")
	}
}

// Issue 11, item 1: a proxy role ARN naming another account or path reached,
// by name, another org's proxy role. It is refused when the mapping is
// written and again before any trust write (a ConfigMap edited by hand).
func TestProxyRoleOfAnotherSpellingIsRefused(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	const wrong = "arn:aws:iam::111111111111:role/some/path/acme-list-bucket-role"
	before := call(t, st, "GET", "/role_mappings", admin, "").body
	r := call(t, st, "POST", "/update_role_mapping", admin, `{"domino_org":"irsa-iamrole-update-bucket",`+
		`"iam_role_arn":"arn:aws:iam::524112250363:role/acme-list-bucket-role","proxy_iam_role_arn":"`+wrong+`"}`)
	if r.status != 409 || r.errorCode(t) != "proxy_role_unusable" || !strings.Contains(r.body, "account 111111111111") {
		t.Fatalf("update with a foreign proxy role = %d %s", r.status, r.body)
	}
	for _, body := range []string{
		`{"role_pairs":[{"iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/x/acme-list-bucket-role"}]}`,
		`{"role_pairs":[{"iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/no-such-role"}]}`,
	} {
		if r := call(t, st, "PUT", "/v2/mappings/irsa-iamrole-update-bucket", admin, body); r.status != 409 || r.errorCode(t) != "proxy_role_unusable" {
			t.Errorf("v2 put %s = %d %s", body, r.status, r.body)
		}
	}
	if after := call(t, st, "GET", "/role_mappings", admin, "").body; after != before {
		t.Fatalf("a refused mapping changed the store:\n%s\n%s", before, after)
	}

	// The same mapping written behind the broker's back is refused at map time.
	if err := st.Mappings.Put(context.Background(), model.Mapping{Org: "irsa-iamrole-update-bucket", Pairs: []model.RolePair{{
		IAMRoleARN: "arn:aws:iam::524112250363:role/acme-list-bucket-role", ProxyIAMRoleARN: wrong, UpdateTrustPolicy: true}}}); err != nil {
		t.Fatal(err)
	}
	r = call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, `{"run_id":"bobrun"}`)
	if r.status != 409 || r.errorCode(t) != "proxy_role_mismatch" {
		t.Fatalf("map through a mismatched proxy role = %d %s", r.status, r.body)
	}
	if doc := subjectsOf(t, st, "acme-list-bucket-role"); strings.Contains(doc, "run-bobrun") {
		t.Fatalf("bob's subject reached another org's proxy role: %s", doc)
	}
}
