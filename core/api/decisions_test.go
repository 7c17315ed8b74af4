package api_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// TestDecisions: an admin finds a user's map decision in GET /v2/decisions
// by user and time, and by its id; the decisions hold neither the caller's
// token, nor the pod token, nor a credential-like identity attribute; other
// users are refused.
func TestDecisions(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(users, []byte(`users:
  - {token: dana-secret-token, id: u-dana, username: dana, organizations: [irsa-iamrole-list-bucket],
     attributes: {department: quant, session_token: attribute-secret-value}}
  - {token: admin-token, id: u-admin, username: admin, admin: true}
  - {token: bob-token, id: u-bob, username: bob}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	st := devstacktest.Start(t, devstack.Options{IdentityFile: users})
	before := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)

	r := call(t, st, "POST", "/v2/map", "dana-secret-token", `{"run_id":"run1","irsa_workload_type":"cluster-worker"}`,
		"X-Irsa-Pod-Token", "pod-secret-token-value")
	if r.status != 200 {
		t.Fatalf("map: %d %s", r.status, r.body)
	}
	decisionID, _ := r.json(t)["decision_id"].(string)
	if r := call(t, st, "GET", "/v2/grants", "bob-token", ""); r.status != 200 {
		t.Fatalf("bob's grants: %d %s", r.status, r.body)
	}

	r = call(t, st, "GET", "/v2/decisions?user=dana&since="+url.QueryEscape(before), "admin-token", "")
	if r.status != 200 {
		t.Fatalf("decisions: %d %s", r.status, r.body)
	}
	for _, secret := range []string{"dana-secret-token", "pod-secret-token-value", "attribute-secret-value"} {
		if strings.Contains(r.body, secret) {
			t.Errorf("GET /v2/decisions shows a credential %q:\n%s", secret, r.body)
		}
	}
	var list api.DecisionList
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	if list.Capacity != 1000 {
		t.Errorf("capacity %d", list.Capacity)
	}
	var found *policy.DecisionEvent
	for _, ev := range list.Decisions {
		if ev.Input == nil || ev.Input.Identity.Username != "dana" {
			t.Errorf("user=dana answered %+v", ev)
		}
		if ev.DecisionID == decisionID {
			found = ev
		}
	}
	if found == nil {
		t.Fatalf("the map's decision %s is not listed: %s", decisionID, r.body)
	}
	if found.Path != policy.GrantsPath || found.Input.Workload.Type != "cluster-worker" || found.Input.Request.Action != "map" ||
		found.Input.Identity.Attributes["department"] != "quant" || strings.Join(found.Erased, ",") != "/input/identity/attributes/session_token" ||
		found.Revision == "" || found.MappingRevision() == "" {
		t.Errorf("decision = %+v", found)
	}
	if grants, _ := found.Result.([]any); len(grants) != 1 {
		t.Errorf("result = %v", found.Result)
	}

	// By id, as replay fetches it.
	r = call(t, st, "GET", "/v2/decisions/"+decisionID, "admin-token", "")
	var one policy.DecisionEvent
	if r.status != 200 || json.Unmarshal([]byte(r.body), &one) != nil || one.DecisionID != decisionID {
		t.Errorf("by id: %d %s", r.status, r.body)
	}
	if r := call(t, st, "GET", "/v2/decisions/0000000000000000", "admin-token", ""); r.status != 404 || r.errorCode(t) != "decision_not_found" {
		t.Errorf("unknown id: %d %s", r.status, r.body)
	}
	// Filters.
	r = call(t, st, "GET", "/v2/decisions?path=allow&limit=1", "admin-token", "")
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Decisions) != 1 || list.Decisions[0].Path != policy.AllowPath {
		t.Errorf("path=allow&limit=1: %s", r.body)
	}
	r = call(t, st, "GET", "/v2/decisions?user=u-bob", "admin-token", "")
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Decisions) != 1 || list.Decisions[0].Input.Request.Action != "my_mappings" {
		t.Errorf("user=u-bob: %s", r.body)
	}
	r = call(t, st, "GET", "/v2/decisions?since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), "admin-token", "")
	if r.status != 200 || !strings.Contains(r.body, `"decisions":[]`) {
		t.Errorf("since the future: %d %s", r.status, r.body)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?since=yesterday", "?path=other", "?usr=dana", "?user=a&user=b"} {
		if r := call(t, st, "GET", "/v2/decisions"+q, "admin-token", ""); r.status != 400 || r.errorCode(t) != "invalid_parameter" {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	// Admins only.
	for _, p := range []string{"/v2/decisions", "/v2/decisions/" + decisionID} {
		if r := call(t, st, "GET", p, "bob-token", ""); r.status != 403 {
			t.Errorf("bob GET %s: %d %s", p, r.status, r.body)
		}
		if r := call(t, st, "GET", p, "", ""); r.status != 401 {
			t.Errorf("anonymous GET %s: %d %s", p, r.status, r.body)
		}
	}
}
