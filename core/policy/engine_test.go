package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

func arn(account, name string) string { return "arn:aws:iam::" + account + ":role/" + name }

var (
	listPair   = model.RolePair{IAMRoleARN: arn("524112250363", "acme-list-bucket-role"), ProxyIAMRoleARN: arn("946429944765", "acme-list-bucket-role"), UpdateTrustPolicy: true}
	readPair   = model.RolePair{IAMRoleARN: arn("524112250363", "acme-read-bucket-role"), ProxyIAMRoleARN: arn("946429944765", "acme-read-bucket-role"), UpdateTrustPolicy: false}
	updatePair = model.RolePair{IAMRoleARN: arn("524112250363", "acme-update-bucket-role"), ProxyIAMRoleARN: arn("946429944765", "acme-update-bucket-role"), UpdateTrustPolicy: true}
)

func testSnapshot() model.Snapshot {
	return model.Snapshot{Revision: "7", Mappings: map[string]model.Mapping{
		"list":  {Org: "list", Pairs: []model.RolePair{listPair}},
		"read":  {Org: "read", Pairs: []model.RolePair{readPair}},
		"multi": {Org: "multi", Multi: true, Pairs: []model.RolePair{updatePair, readPair}},
	}}
}

func user(orgs ...string) Input {
	return Input{
		Identity: sdk.Identity{ID: "6441e3e0f5e0c93c5b6e4f01", Username: "alice", Organizations: orgs},
		Workload: model.Workload{RunID: "run1", Namespace: "domino-compute", ServiceAccount: "run-run1"},
		Request:  Request{Method: "POST", Path: "/map_iam_roles_to_pod_sa", Action: "map"},
	}
}

func grant(org string, p model.RolePair) model.Grant {
	return model.Grant{Org: org, RolePair: p}
}

func newEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func writePolicy(t testing.TB, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustGrants(t testing.TB, e *Engine, in Input, snap model.Snapshot) []model.Grant {
	t.Helper()
	d, err := e.Grants(context.Background(), in, snap)
	if err != nil {
		t.Fatalf("Grants: %v", err)
	}
	return d.Grants
}

func TestGrantsDefaultPolicy(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		name string
		in   Input
		want []model.Grant
	}{
		{"no orgs", user(), []model.Grant{}},
		{"nil orgs", Input{Identity: sdk.Identity{ID: "x"}}, []model.Grant{}},
		{"one org", user("list"), []model.Grant{grant("list", listPair)}},
		{"two orgs, sorted by org", user("read", "list"), []model.Grant{grant("list", listPair), grant("read", readPair)}},
		{"multi-role org, sorted by ARN", user("multi"), []model.Grant{grant("multi", readPair), grant("multi", updatePair)}},
		{"org without mapping", user("unmapped", "list"), []model.Grant{grant("list", listPair)}},
		{"same pair through two orgs", user("multi", "read"), []model.Grant{grant("multi", readPair), grant("multi", updatePair), grant("read", readPair)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Grants(context.Background(), tt.in, testSnapshot())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d.Grants, tt.want) {
				t.Fatalf("grants = %+v\nwant %+v", d.Grants, tt.want)
			}
			if d.Revision != e.Revision() || d.Revision == "" || len(d.ID) != 16 {
				t.Fatalf("decision metadata: %+v (engine revision %q)", d, e.Revision())
			}
		})
	}
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestDecisionIDsDiffer(t *testing.T) {
	e := newEngine(t, Options{})
	a, _ := e.Grants(context.Background(), user("list"), testSnapshot())
	b, _ := e.Grants(context.Background(), user("list"), testSnapshot())
	if a.ID == b.ID {
		t.Fatalf("two decisions share id %q", a.ID)
	}
}

func TestAllowDefaultPolicy(t *testing.T) {
	e := newEngine(t, Options{})
	for _, admin := range []bool{true, false} {
		in := user()
		in.Identity.Admin = admin
		in.Request.Action = "mapping.write"
		got, err := e.Allow(context.Background(), in)
		if err != nil || got != admin {
			t.Errorf("Allow(admin=%v) = %v, %v", admin, got, err)
		}
	}
}

func TestMappingRevisionKeysPreparedData(t *testing.T) {
	e := newEngine(t, Options{})
	snap := model.Snapshot{Revision: "1", Mappings: map[string]model.Mapping{"list": {Org: "list", Pairs: []model.RolePair{listPair}}}}
	if got := mustGrants(t, e, user("list"), snap); len(got) != 1 {
		t.Fatalf("rev 1: %+v", got)
	}
	// Same revision: the prepared data is reused (the revision is the
	// store's promise that nothing changed).
	same := model.Snapshot{Revision: "1", Mappings: map[string]model.Mapping{}}
	if got := mustGrants(t, e, user("list"), same); len(got) != 1 {
		t.Fatalf("same revision was re-read: %+v", got)
	}
	// New revision: new data.
	next := model.Snapshot{Revision: "2", Mappings: map[string]model.Mapping{}}
	if got := mustGrants(t, e, user("list"), next); len(got) != 0 {
		t.Fatalf("rev 2 still sees old data: %+v", got)
	}
	// Empty revision: never cached.
	unknown := model.Snapshot{Mappings: snap.Mappings}
	if got := mustGrants(t, e, user("list"), unknown); len(got) != 1 {
		t.Fatalf("unrevisioned snapshot: %+v", got)
	}
	if got := mustGrants(t, e, user("list"), model.Snapshot{}); len(got) != 0 {
		t.Fatalf("empty unrevisioned snapshot: %+v", got)
	}
}

const onlyTrustUpdating = `package irsa.grants

# Override: only pairs whose trust policy the broker manages.
grants contains g if {
	some org in input.identity.organizations
	some pair in data.mappings[org]
	pair.update_iam_role_trust_policy
	g := object.union(pair, {"org": org})
}
`

func TestOverrideFileReplacesDefault(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "grants.rego", onlyTrustUpdating)
	writePolicy(t, dir, "grants_test.rego", "this is not rego and must be ignored")
	writePolicy(t, dir, "notes.txt", "not a policy")
	e := newEngine(t, Options{PolicyDir: dir})
	got := mustGrants(t, e, user("list", "read", "multi"), testSnapshot())
	want := []model.Grant{grant("list", listPair), grant("multi", updatePair)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("grants = %+v\nwant %+v (default rules must be gone)", got, want)
	}
}

const platformExtra = `package irsa.grants

# Extra: members of group "platform" get the "list" org's pairs too.
grants contains object.union(pair, {"org": "list"}) if {
	"platform" in input.identity.groups
	some pair in data.mappings.list
}
`

func TestExtraFileAddsRules(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "platform.rego", platformExtra)
	e := newEngine(t, Options{PolicyDir: dir})
	in := user("read")
	in.Identity.Groups = []string{"platform"}
	got := mustGrants(t, e, in, testSnapshot())
	want := []model.Grant{grant("list", listPair), grant("read", readPair)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("grants = %+v\nwant %+v (default plus extra)", got, want)
	}
	// Without the group only the default applies.
	if got := mustGrants(t, e, user("read"), testSnapshot()); !reflect.DeepEqual(got, []model.Grant{grant("read", readPair)}) {
		t.Fatalf("grants without group = %+v", got)
	}
}

func TestAuthzOverride(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "authz.rego", `package irsa.authz

default allow := false

allow if input.identity.admin == true

allow if {
	input.request.action == "mapping.read"
	"auditors" in input.identity.groups
}
`)
	e := newEngine(t, Options{PolicyDir: dir})
	in := user()
	in.Identity.Groups = []string{"auditors"}
	for action, want := range map[string]bool{"mapping.read": true, "mapping.write": false} {
		in.Request.Action = action
		if got, err := e.Allow(context.Background(), in); err != nil || got != want {
			t.Errorf("Allow(%s) = %v, %v; want %v", action, got, err, want)
		}
	}
}

func TestUndefinedAndMalformedResults(t *testing.T) {
	t.Run("undefined grants is an explicit deny", func(t *testing.T) {
		dir := t.TempDir()
		writePolicy(t, dir, "grants.rego", "package irsa.grants\n\ngrants := {\"x\"} if input.request.action == \"never\"\n")
		e := newEngine(t, Options{PolicyDir: dir})
		d, err := e.Grants(context.Background(), user("list"), testSnapshot())
		if err != nil || d.Grants == nil || len(d.Grants) != 0 {
			t.Fatalf("got %+v, %v; want empty grants and no error", d, err)
		}
	})
	for name, rule := range map[string]string{
		"string element":   `grants contains "nope"`,
		"missing flag":     `grants contains {"org": "o", "iam_role_arn": "a", "proxy_iam_role_arn": "b"}`,
		"non-boolean flag": `grants contains {"org": "o", "iam_role_arn": "a", "proxy_iam_role_arn": "b", "update_iam_role_trust_policy": "true"}`,
		"not a set":        `grants := "everything"`,
		"number org":       `grants contains {"org": 1, "iam_role_arn": "a", "proxy_iam_role_arn": "b", "update_iam_role_trust_policy": true}`,
	} {
		t.Run("malformed "+name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicy(t, dir, "grants.rego", "package irsa.grants\n\n"+rule+"\n")
			e := newEngine(t, Options{PolicyDir: dir})
			if d, err := e.Grants(context.Background(), user("list"), testSnapshot()); err == nil {
				t.Fatalf("malformed result accepted: %+v", d)
			}
		})
	}
	t.Run("undefined allow is false", func(t *testing.T) {
		dir := t.TempDir()
		writePolicy(t, dir, "authz.rego", "package irsa.authz\n\nallow if input.request.action == \"never\"\n")
		e := newEngine(t, Options{PolicyDir: dir})
		in := user()
		in.Identity.Admin = true
		if ok, err := e.Allow(context.Background(), in); ok || err != nil {
			t.Fatalf("Allow = %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("non-boolean allow is an error", func(t *testing.T) {
		dir := t.TempDir()
		writePolicy(t, dir, "authz.rego", "package irsa.authz\n\nallow := \"yes\"\n")
		e := newEngine(t, Options{PolicyDir: dir})
		if ok, err := e.Allow(context.Background(), user()); err == nil {
			t.Fatalf("Allow = %v, want an error", ok)
		}
	})
}

func TestNewRefusesBrokenPolicy(t *testing.T) {
	for name, text := range map[string]string{
		"syntax":         "package irsa.grants\n\ngrants contains x if {",
		"unsafe var":     "package irsa.grants\n\ngrants contains x if { y := 1 }\n",
		"rego v0 syntax": "package irsa.grants\n\ngrants[x] { x := 1 }\n",
		"no grants rule": "package irsa.grantz\n\ngrants contains 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicy(t, dir, "grants.rego", text)
			if _, err := New(context.Background(), Options{PolicyDir: dir}); err == nil {
				t.Fatal("New accepted a broken policy")
			}
		})
	}
	if _, err := New(context.Background(), Options{PolicyDir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("New accepted a missing policy dir")
	}
}

func TestBrokenReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "platform.rego", platformExtra)
	reg := prometheus.NewRegistry()
	e := newEngine(t, Options{PolicyDir: dir, Registerer: reg})
	good := e.Revision()
	in := user("read")
	in.Identity.Groups = []string{"platform"}
	before := mustGrants(t, e, in, testSnapshot())

	writePolicy(t, dir, "platform.rego", "package irsa.grants\n\ngrants contains x if {\n")
	if err := e.Reload(context.Background()); err == nil {
		t.Fatal("Reload accepted a broken policy")
	}
	// Issue 11, item 5: a refused reload keeps the replica ready (the last
	// good policy serves) and is reported by Status, metrics and logs.
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready = %v after a refused reload, want ready: the last good policy serves", err)
	}
	if st := e.Status(); st.Revision != good || st.ReloadError == "" || st.RefusedRevision == "" || st.RefusedRevision == good {
		t.Fatalf("Status = %+v, want the refusal beside serving revision %s", st, good)
	}
	if e.Revision() != good {
		t.Fatalf("revision changed to %s", e.Revision())
	}
	if got := mustGrants(t, e, in, testSnapshot()); !reflect.DeepEqual(got, before) {
		t.Fatalf("last good policy not serving: %+v, want %+v", got, before)
	}
	if v := metricValue(t, reg, "irsa_policy_reload_total", "failure"); v != 1 {
		t.Fatalf("failure count = %v", v)
	}
	if v := metricValue(t, reg, "irsa_policy_reload_total", "success"); v != 1 {
		t.Fatalf("success count = %v", v)
	}
	if v := metricValue(t, reg, "irsa_policy_last_reload_success", ""); v != 0 {
		t.Fatalf("last reload success gauge = %v, want 0", v)
	}

	// Fixing the file recovers.
	writePolicy(t, dir, "platform.rego", platformExtra+"\n# fixed\n")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready after fix: %v", err)
	}
	if st := e.Status(); st.ReloadError != "" {
		t.Fatalf("Status after fix still reports %q", st.ReloadError)
	}
	if e.Revision() == good {
		t.Fatal("revision did not change after a successful reload of different sources")
	}
	if v := metricValue(t, reg, "irsa_policy_last_reload_success", ""); v != 1 {
		t.Fatalf("last reload success gauge = %v, want 1", v)
	}
}

func TestWatchReloads(t *testing.T) {
	for _, mode := range []struct {
		name     string
		noNotify bool
		poll     time.Duration
	}{
		{"fsnotify", false, time.Hour},
		{"poll fallback", true, 20 * time.Millisecond},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			e := newEngine(t, Options{PolicyDir: dir, PollInterval: mode.poll})
			e.noNotify = mode.noNotify
			e.debounce = 10 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Watch(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Watch: %v", err)
				}
			}()
			in := user("read")
			in.Identity.Groups = []string{"platform"}
			if got := mustGrants(t, e, in, testSnapshot()); len(got) != 1 {
				t.Fatalf("before: %+v", got)
			}
			// fsnotify needs the watch in place before the write; re-write
			// until the change is seen rather than sleeping.
			polltest.Until(t, "the new policy to serve", func() bool {
				writePolicy(t, dir, "platform.rego", platformExtra)
				return len(mustGrants(t, e, in, testSnapshot())) == 2
			})
			// A broken edit is refused while the good one keeps serving.
			writePolicy(t, dir, "platform.rego", "package irsa.grants\n\ngrants contains")
			polltest.Until(t, "Status to report the broken policy", func() bool { return e.Status().ReloadError != "" })
			if err := e.Ready(); err != nil {
				t.Fatalf("a refused reload made the engine unready: %v", err)
			}
			if got := mustGrants(t, e, in, testSnapshot()); len(got) != 2 {
				t.Fatalf("after broken edit: %+v", got)
			}
			// Removing the file returns to the defaults.
			if err := os.Remove(filepath.Join(dir, "platform.rego")); err != nil {
				t.Fatal(err)
			}
			polltest.Until(t, "the defaults to serve again", func() bool {
				return e.Status().ReloadError == "" && len(mustGrants(t, e, in, testSnapshot())) == 1
			})
		})
	}
}

func TestGrantsWhileReloading(t *testing.T) {
	dir := t.TempDir()
	e := newEngine(t, Options{PolicyDir: dir})
	in := user("read")
	in.Identity.Groups = []string{"platform"}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Mapping revisions change too, exercising the data cache.
				snap := testSnapshot()
				snap.Revision = fmt.Sprint(w*1000 + i%3)
				d, err := e.Grants(ctx, in, snap)
				if err != nil {
					errs <- err
					return
				}
				if n := len(d.Grants); n != 1 && n != 2 {
					errs <- fmt.Errorf("unexpected grants %+v", d.Grants)
					return
				}
			}
		}()
	}
	for i := range 20 {
		if i%2 == 0 {
			writePolicy(t, dir, "platform.rego", platformExtra)
		} else if err := os.Remove(filepath.Join(dir, "platform.rego")); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestDecisionLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{w: &buf, mu: &mu}, JSONFormat: true, Level: hclog.Info})
	e := newEngine(t, Options{DecisionLog: log})
	in := user("multi", "list")
	in.Request.ID = "req-1"
	d, err := e.Grants(context.Background(), in, testSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	in.Request.Action = "mapping.write"
	if _, err := e.Allow(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	mu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("want one line per decision, got %d:\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"decision_id": d.ID, "query": "grants", "user_id": in.Identity.ID, "username": "alice",
		"run_id": "run1", "action": "map", "policy_revision": e.Revision(), "mapping_revision": "7",
		"grants": float64(3), "request_id": "req-1",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("decision log %s = %v, want %v", k, rec[k], v)
		}
	}
	if orgs, _ := rec["granted_orgs"].([]any); len(orgs) != 2 || orgs[0] != "list" || orgs[1] != "multi" {
		t.Errorf("granted_orgs = %v", rec["granted_orgs"])
	}
	if _, ok := rec["duration"]; !ok {
		t.Error("no duration")
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["query"] != "allow" || rec["allowed"] != false || rec["action"] != "mapping.write" {
		t.Errorf("allow decision line = %v", rec)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// metricValue gathers reg and returns the value of the counter or gauge name
// (with label result=result when result is set); it fails if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" && !hasLabel(m, "result", result) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s{result=%q} not registered", name, result)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

const ciOnlyRead = `package irsa.grants

# Override: identities from the "ci" provider get only the read org's pairs.
grants contains g if {
	input.identity.provider == "ci"
	some pair in data.mappings.read
	g := object.union(pair, {"org": "read"})
}

grants contains g if {
	input.identity.provider != "ci"
	some org in input.identity.organizations
	some pair in data.mappings[org]
	g := object.union(pair, {"org": org})
}
`

// TestPolicySeesTheProvider: input.identity.provider names the identity
// provider that authenticated the caller, and policies can decide on it.
func TestPolicySeesTheProvider(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "grants.rego", ciOnlyRead)
	e := newEngine(t, Options{PolicyDir: dir})
	ci := user("list")
	ci.Identity.Provider = "ci"
	if got, want := mustGrants(t, e, ci, testSnapshot()), []model.Grant{grant("read", readPair)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ci grants = %+v\nwant %+v", got, want)
	}
	domino := user("list")
	domino.Identity.Provider = "domino"
	if got, want := mustGrants(t, e, domino, testSnapshot()), []model.Grant{grant("list", listPair)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("domino grants = %+v\nwant %+v", got, want)
	}
}
