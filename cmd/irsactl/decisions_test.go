package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
)

var (
	timeRE  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	hex24RE = regexp.MustCompile(`\b[0-9a-f]{24}\b`)
	hex16RE = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
)

// stable replaces times, request ids, decision ids and revisions.
func stable(s string) string {
	s = timeRE.ReplaceAllString(s, "TIME")
	s = hex24RE.ReplaceAllString(s, "REQUEST")
	return hex16RE.ReplaceAllString(s, "HEX")
}

// TestDecisionsAndReplay: an admin lists the decisions the broker made for
// a user, shows one, and replays it against another policy; non-admins
// are refused.
func TestDecisionsAndReplay(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	c.env[envToken] = "alice-token"
	var prev mapResult
	if err := json.Unmarshal([]byte(c.ok("preview", "--run", "run1", "--type", "cluster-worker", "-o", "json")), &prev); err != nil {
		t.Fatal(err)
	}
	c.env[envToken] = "bob-token"
	if r := c.run("mappings", "list"); r.code != exitForbidden {
		t.Fatalf("bob listed mappings: %d", r.code)
	}
	if r := c.run("decisions"); r.code != exitForbidden || !strings.Contains(r.stderr, "decision.read") {
		t.Errorf("bob read decisions: exit %d: %s", r.code, r.stderr)
	}

	c.env[envToken] = "admin-token"
	c.golden("decisions", stable(c.ok("decisions", "--user", "alice", "--since", "1h")))
	c.golden("decisions-allow", stable(c.ok("decisions", "--path", "allow", "--user", "bob")))
	var list api.DecisionList
	if err := json.Unmarshal([]byte(c.ok("decisions", "--user", "6441e3e0f5e0c93c5b6e4f01", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Decisions) != 1 || list.Decisions[0].DecisionID != prev.DecisionID || list.Decisions[0].Input.Workload.Type != "cluster-worker" {
		t.Fatalf("decisions by user id: %+v", list.Decisions)
	}
	c.golden("decision-detail", stable(c.ok("decisions", prev.DecisionID)))
	if out := c.ok("decisions", "--since", "2999-01-01T00:00:00Z"); !strings.Contains(out, "(no decisions)") {
		t.Errorf("decisions from the future: %q", out)
	}

	// Replayed with the policy the broker serves (the defaults): the same.
	empty := t.TempDir()
	out := c.ok("policy", "eval", empty, "--decision", prev.DecisionID, "--from-broker")
	if !strings.Contains(out, "\nsame result;") {
		t.Errorf("replay with the defaults:\n%s", out)
	}
	// With the examples, cluster workers get the read-only role only.
	out = c.ok("policy", "eval", examplePolicies, "--decision", prev.DecisionID, "--from-broker", "--explain")
	head, trace, ok := strings.Cut(out, "\nexplain: ")
	if !ok {
		t.Fatalf("no explanation:\n%s", out)
	}
	c.golden("policy-eval-replay", stable(head))
	if !strings.Contains(trace, "examples/policies/grants.rego:") || !strings.Contains(trace, "cluster-worker") {
		t.Errorf("the trace does not show the examples' rules:\n%s", trace)
	}
	var rep replayResult
	if err := json.Unmarshal([]byte(c.ok("policy", "eval", examplePolicies, "--decision", prev.DecisionID, "--from-broker", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Same || len(rep.Logged.Grants) != 2 || len(rep.Replayed.Grants) != 1 || rep.Path != policy.GrantsPath || rep.Logged.PolicyRevision == rep.Replayed.PolicyRevision {
		t.Errorf("replay: %+v", rep)
	}
	// An allow decision: bob's refused mapping.read, denied by the examples too.
	// (bob's refused attempt to read the decisions is a decision too.)
	var allow api.DecisionList
	if err := json.Unmarshal([]byte(c.ok("decisions", "--user", "bob", "--path", "allow", "-o", "json")), &allow); err != nil || len(allow.Decisions) != 2 ||
		allow.Decisions[0].Input.Request.Action != "mapping.read" || allow.Decisions[1].Input.Request.Action != api.ActionDecisionRead {
		t.Fatalf("bob's allow decisions: %v %+v", err, allow.Decisions)
	}
	out = c.ok("policy", "eval", examplePolicies, "--decision", allow.Decisions[0].DecisionID, "--explain")
	if !strings.Contains(out, "denied") || !strings.Contains(out, "\nsame result;") || !strings.Contains(out, "data.irsa.authz.allow") {
		t.Errorf("allow replay:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "eval", empty, "--decision", prev.DecisionID}, exitUsage, "--from-broker"},
		{[]string{"policy", "eval", empty, "--decision", prev.DecisionID, "--from-broker", "--user", "x"}, exitUsage, "--user does not go"},
		{[]string{"policy", "eval", empty, "--decision", "0000000000000000", "--from-broker"}, exitNotFound, "decision_not_found"},
		{[]string{"decisions", "--since", "yesterday"}, exitError, "invalid_parameter"},
		{[]string{"decisions", "a", "b"}, exitUsage, "at most one"},
	} {
		if r := c.run(tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}
