package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

const fakeJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

// TestDecisionEventsHaveOPAShape: every decision reaches the sinks as one
// JSON line in OPA's decision-log shape, with the revisions, the result and
// an input without credentials.
func TestDecisionEventsHaveOPAShape(t *testing.T) {
	var buf bytes.Buffer
	ring := NewDecisionRing(10)
	e := newEngine(t, Options{
		Decisions: []DecisionSink{NewDecisionWriter(&buf, nil), ring},
		Labels:    map[string]string{"id": "replica-1", "version": "v-test"},
	})
	in := user("multi", "list")
	in.Request.ID = "req-1"
	in.Identity.Attributes = map[string]string{"department": "r&d", "id_token": "opaque-secret-1", "upn": fakeJWT}
	in.Workload.Labels = map[string]string{"dominodatalab.com/project-name": "quant", "vault-token": "opaque-secret-2"}
	d, err := e.Grants(context.Background(), in, testSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	in.Request.Action = "mapping.write"
	if _, err := e.Allow(context.Background(), in); err != nil {
		t.Fatal(err)
	}

	for _, secret := range []string{"opaque-secret-1", "opaque-secret-2", fakeJWT} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the decision log holds a credential %q:\n%s", secret, buf.String())
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per decision, got %d:\n%s", len(lines), buf.String())
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	rev := e.Revision()
	for k, want := range map[string]any{
		"decision_id": d.ID, "path": "irsa/grants/grants", "revision": rev,
	} {
		if ev[k] != want {
			t.Errorf("%s = %v, want %v", k, ev[k], want)
		}
	}
	bundles, _ := json.Marshal(ev["bundles"])
	if want := fmt.Sprintf(`{"mappings":{"revision":"7"},"policy":{"revision":"%s"}}`, rev); string(bundles) != want {
		t.Errorf("bundles = %s, want %s", bundles, want)
	}
	if labels, _ := json.Marshal(ev["labels"]); string(labels) != `{"id":"replica-1","version":"v-test"}` {
		t.Errorf("labels = %s", labels)
	}
	if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["timestamp"])); err != nil || time.Since(ts) > time.Hour {
		t.Errorf("timestamp = %v (%v)", ev["timestamp"], err)
	}
	if m, _ := ev["metrics"].(map[string]any); m["timer_rego_query_eval_ns"] == nil {
		t.Errorf("metrics = %v", ev["metrics"])
	}
	if res, _ := ev["result"].([]any); len(res) != 3 {
		t.Errorf("result = %v, want the 3 grants", ev["result"])
	}
	erased, _ := json.Marshal(ev["erased"])
	for _, p := range []string{"/input/identity/attributes/id_token", "/input/identity/attributes/upn", "/input/workload/labels/vault-token"} {
		if !strings.Contains(string(erased), `"`+p+`"`) {
			t.Errorf("erased %s lacks %s", erased, p)
		}
	}
	input, _ := json.Marshal(ev["input"])
	for _, kept := range []string{`"department":"r\u0026d"`, `"dominodatalab.com/project-name":"quant"`, `"id":"req-1"`, `"run_id":"run1"`} {
		if !strings.Contains(string(input), kept) {
			t.Errorf("input %s lacks %s", input, kept)
		}
	}
	if in.Identity.Attributes["id_token"] != "opaque-secret-1" {
		t.Error("scrubbing modified the caller's identity")
	}

	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["path"] != "irsa/authz/allow" || ev["result"] != false || ev["bundles"].(map[string]any)["mappings"] != nil {
		t.Errorf("allow event = %s", lines[1])
	}

	// The ring holds the same events, decoded back into Go.
	got := ring.Query(DecisionQuery{})
	if len(got) != 2 || got[0].DecisionID != d.ID || got[1].Path != AllowPath || got[0].MappingRevision() != "7" {
		t.Fatalf("ring = %+v", got)
	}
	var back DecisionEvent
	if err := json.Unmarshal([]byte(lines[0]), &back); err != nil || back.Input.Identity.Username != "alice" || back.Input.Workload.RunID != "run1" {
		t.Errorf("a line does not decode into a DecisionEvent: %v %+v", err, back)
	}
}

func TestFailedDecisionIsLogged(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "grants.rego", "package irsa.grants\n\ngrants := \"everything\"\n")
	ring := NewDecisionRing(4)
	e := newEngine(t, Options{PolicyDir: dir, Decisions: []DecisionSink{ring}})
	if _, err := e.Grants(context.Background(), user("list"), testSnapshot()); err == nil {
		t.Fatal("a malformed result was accepted")
	}
	evs := ring.Query(DecisionQuery{})
	if len(evs) != 1 || evs[0].Error == nil || !strings.Contains(evs[0].Error.Message, "malformed") || evs[0].Result != nil {
		t.Fatalf("events = %+v", evs)
	}
	b, _ := json.Marshal(evs[0])
	if strings.Contains(string(b), `"result"`) {
		t.Errorf("a failed decision has a result: %s", b)
	}
}

func event(id, user string, ts time.Time, path string) *DecisionEvent {
	return &DecisionEvent{DecisionID: id, Path: path, Timestamp: ts, Input: &Input{Identity: identity(user)}}
}

func ids(evs []*DecisionEvent) string {
	s := make([]string, len(evs))
	for i, ev := range evs {
		s[i] = ev.DecisionID
	}
	return strings.Join(s, ",")
}

func TestDecisionRingQuery(t *testing.T) {
	r := NewDecisionRing(4)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if got := r.Query(DecisionQuery{}); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i, u := range []string{"alice", "bob", "alice", "carol", "alice", "bob"} {
		path := GrantsPath
		if i == 3 {
			path = AllowPath
		}
		r.LogDecision(event(fmt.Sprint("d", i), u, t0.Add(time.Duration(i)*time.Minute), path))
	}
	for _, tc := range []struct {
		q    DecisionQuery
		want string
	}{
		{DecisionQuery{}, "d2,d3,d4,d5"}, // the oldest two are gone
		{DecisionQuery{User: "alice"}, "d2,d4"},
		{DecisionQuery{User: "id-of-bob"}, "d5"}, // by id too
		{DecisionQuery{Limit: 3}, "d3,d4,d5"},
		{DecisionQuery{User: "alice", Limit: 1}, "d4"},
		{DecisionQuery{Since: t0.Add(4 * time.Minute)}, "d4,d5"},
		{DecisionQuery{Path: AllowPath}, "d3"},
		{DecisionQuery{User: "nobody"}, ""},
	} {
		if got := ids(r.Query(tc.q)); got != tc.want {
			t.Errorf("Query(%+v) = %s, want %s", tc.q, got, tc.want)
		}
	}
	if ev, ok := r.Get("d3"); !ok || ev.DecisionID != "d3" {
		t.Errorf("Get(d3) = %v %v", ev, ok)
	}
	if _, ok := r.Get("d1"); ok {
		t.Error("Get found a decision that left the ring")
	}
	if r.Cap() != 4 || NewDecisionRing(0).Cap() != 1 {
		t.Error("capacity")
	}
}

// TestDecisionRingConcurrent: writers and readers at once (run with -race);
// the ring ends holding exactly the last decisions of every writer.
func TestDecisionRingConcurrent(t *testing.T) {
	const writers, each, size = 8, 500, 64
	r := NewDecisionRing(size)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs := r.Query(DecisionQuery{User: "w3", Limit: 10})
				for i := 1; i < len(evs); i++ {
					if evs[i].Timestamp.Before(evs[i-1].Timestamp) {
						t.Error("query out of order")
					}
				}
				r.Get("w1-0")
			}
		}()
	}
	t0 := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.LogDecision(event(fmt.Sprintf("w%d-%d", w, i), fmt.Sprint("w", w), t0.Add(time.Duration(i)), GrantsPath))
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	all := r.Query(DecisionQuery{})
	if len(all) != size {
		t.Fatalf("ring holds %d, want %d", len(all), size)
	}
	seen := map[string]bool{}
	for _, ev := range all {
		if seen[ev.DecisionID] {
			t.Errorf("%s twice", ev.DecisionID)
		}
		seen[ev.DecisionID] = true
	}
}

// TestDecisionWriterConcurrent: lines from concurrent decisions never
// interleave.
func TestDecisionWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := NewDecisionWriter(&buf, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				w.LogDecision(event(fmt.Sprintf("g%d-%d", g, i), strings.Repeat("u", 500), time.Now(), GrantsPath))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var ev DecisionEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("torn line %q: %v", l, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestDecisionWriterCountsFailures(t *testing.T) {
	w := NewDecisionWriter(failingWriter{}, nil)
	w.LogDecision(event("a", "alice", time.Now(), GrantsPath))
	w.LogDecision(event("b", "alice", time.Now(), GrantsPath))
	if w.Failures() != 2 {
		t.Errorf("failures = %d", w.Failures())
	}
}

// FuzzScrub: whatever names and values identity attributes and pod labels
// carry, a credential-like one never reaches the logged input, the others
// all do, and the caller's maps are left alone.
func FuzzScrub(f *testing.F) {
	f.Add("id_token", fakeJWT, "project", "quant")
	f.Add("X-Api-Key", "k", "Session", "s")
	f.Add("a/b~c", " "+fakeJWT+" ", "", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		attrs := map[string]string{k1: v1}
		labels := map[string]string{k2: v2}
		in := Input{Identity: identity("alice"), Workload: model.Workload{Labels: labels}}
		in.Identity.Attributes = attrs
		out, erased := Scrub(in)
		if attrs[k1] != v1 || labels[k2] != v2 || len(attrs) != 1 || len(labels) != 1 {
			t.Fatal("Scrub modified its input")
		}
		for _, c := range []struct {
			k, v, prefix string
			m            map[string]string
		}{{k1, v1, "/input/identity/attributes/", out.Identity.Attributes}, {k2, v2, "/input/workload/labels/", out.Workload.Labels}} {
			secret := secretName.MatchString(c.k) || looksLikeJWT.MatchString(strings.TrimSpace(c.v))
			_, kept := c.m[c.k]
			if secret == kept {
				t.Errorf("%q=%q: secret %v, kept %v", c.k, c.v, secret, kept)
			}
			listed := false
			for _, p := range erased {
				listed = listed || p == c.prefix+pointerEscape(c.k)
			}
			if secret != listed {
				t.Errorf("%q erased %v, listed %v (%v)", c.k, secret, listed, erased)
			}
		}
	})
}

func identity(name string) sdk.Identity {
	return sdk.Identity{ID: "id-of-" + name, Username: name}
}
