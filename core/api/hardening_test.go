package api_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// Issue 11, item 2: any caller chose the method label of the HTTP histogram,
// so random methods made one series each. Every label now has a fixed set
// of values, whatever methods, paths and headers arrive.
func TestHostileRequestsKeepMetricSeriesBounded(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	token := func(n int) string {
		const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	paths := []string{"/map_iam_roles_to_pod_sa", "/healthz", "/v2/mappings/x", "/nope"}
	send := func(method, path string) {
		req, err := http.NewRequest(method, st.BrokerURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", token(20))
		req.Header.Set("Authorization", "Bearer "+token(30))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%.20s %s: %v", method, path, err)
		}
		res.Body.Close()
	}
	for i := range 400 {
		send(token(1+rng.IntN(12)), paths[i%len(paths)]+"/"+token(8))
		send(token(1+rng.IntN(12)), paths[i%len(paths)])
	}
	for range 20 {
		send(token(60<<10-200), "/healthz")
	}

	families, err := st.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
		"OPTIONS": true, "CONNECT": true, "TRACE": true, "other": true}
	series := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				if len(l.GetValue()) > 100 {
					t.Errorf("%s: label %s has a %d-byte value", f.GetName(), l.GetName(), len(l.GetValue()))
				}
				if f.GetName() == "irsa_http_request_duration_seconds" && l.GetName() == "method" && !methods[l.GetValue()] {
					t.Errorf("method label %.40q is not one of the fixed set", l.GetValue())
				}
				if l.GetName() == "route" && strings.Contains(l.GetValue(), "nope") {
					t.Errorf("route label carries the request path: %q", l.GetValue())
				}
			}
		}
	}
	// 820 hostile requests; the registry's size must not grow with them.
	t.Logf("%d series in the registry after 820 hostile requests", series)
	if series > 300 {
		t.Fatalf("%d series after hostile requests", series)
	}
}

// Issue 11, item 9: a body trickled in slowly held the request for the
// server's ReadTimeout (60 s); the request deadline now covers the body.
func TestSlowBodyIsCutAtTheRequestTimeout(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{RequestTimeout: 300 * time.Millisecond})
	u, _ := url.Parse(st.BrokerURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A safety net only: before the fix this read blocked for ReadTimeout.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "POST /map_iam_roles_to_pod_sa HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"run_id\":", alice)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer res.Body.Close()
	r := resp{status: res.StatusCode, header: res.Header}
	var sb strings.Builder
	_, _ = bufio.NewReader(res.Body).WriteTo(&sb)
	r.body = sb.String()
	if r.status != http.StatusRequestTimeout || r.errorCode(t) != "body_timeout" {
		t.Fatalf("stalled body = %d %s", r.status, r.body)
	}
}

// Issue 11, item 7: a map that times out may still have its change applied
// (docs/design/map-atomicity.md says so); the change is the run's own,
// granted subject, and a retry converges without another IAM write.
func TestTimedOutMapIsRetriedCheaply(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{RequestTimeout: 200 * time.Millisecond})
	st.Sim.SetLatency("UpdateAssumeRolePolicy", time.Second)
	writes := st.Sim.Calls()["UpdateAssumeRolePolicy"]
	r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, `{"run_id":"slow1"}`)
	if r.status != 503 || r.errorCode(t) != "timeout" || r.header.Get("Retry-After") == "" {
		t.Fatalf("map past its deadline = %d %s", r.status, r.body)
	}
	// Retry as the contract says: a retry queues behind the round still
	// carrying the timed-out request (one queue per role) and may time out
	// too while it waits; each attempt blocks on the broker, no sleeping.
	st.Sim.SetLatency("UpdateAssumeRolePolicy", 0)
	for attempt := 1; ; attempt++ {
		r = call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, `{"run_id":"slow1"}`)
		if r.status == 200 {
			break
		}
		if r.status != 503 || attempt == 100 {
			t.Fatalf("retry %d = %d %s", attempt, r.status, r.body)
		}
	}
	const subject = "system:serviceaccount:domino-compute:run-slow1"
	if doc := subjectsOf(t, st, "acme-update-bucket-role"); !strings.Contains(doc, subject) {
		t.Fatalf("subject missing after the retry: %s", doc)
	}
	if got := st.Sim.Calls()["UpdateAssumeRolePolicy"]; got != writes+1 {
		t.Fatalf("%d trust-policy writes for one timed-out map and its retry, want 1", got-writes)
	}
}

// Issue 11, item 5: a refused policy reload made /readyz fail on every
// replica watching the same files, and /readyz (no auth) printed the file
// path and the offending source. Readiness now reflects the ability to
// serve; the reason is for admins, at /v2/status.
func TestRefusedPolicyReloadKeepsReadinessAndDisclosesNothing(t *testing.T) {
	dir := t.TempDir()
	st := devstacktest.Start(t, devstack.Options{PolicyDir: dir})
	const secretish = "grants contains SECRET_MARKER if {"
	file := filepath.Join(dir, "broken.rego")
	if err := os.WriteFile(file, []byte("package irsa.grants\n\n"+secretish+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := st.Policy.Reload(context.Background()); err == nil {
		t.Fatal("a broken policy was accepted")
	}
	r := call(t, st, "GET", "/v2/status", admin, "")
	if r.status != 200 {
		t.Fatalf("/v2/status = %d %s", r.status, r.body)
	}
	status := r.json(t)
	pol := status["components"].(map[string]any)["policy"].(map[string]any)
	if e, _ := pol["reload_error"].(string); !strings.Contains(e, "broken.rego") {
		t.Fatalf("the refused reload does not show in /v2/status: %v", status)
	}
	if status["ready"] != true {
		t.Errorf("/v2/status ready = %v after a refused reload", status["ready"])
	}
	r = call(t, st, "GET", "/readyz", "", "")
	if r.status != 200 {
		t.Fatalf("/readyz = %d %s after a refused reload; the last good policy still serves", r.status, r.body)
	}
	if strings.Contains(r.body, dir) || strings.Contains(r.body, "SECRET_MARKER") || strings.Contains(r.body, "rego") {
		t.Fatalf("/readyz discloses configuration: %s", r.body)
	}
	if r := call(t, st, "GET", "/v2/status", alice, ""); r.status != 403 {
		t.Fatalf("/v2/status for a non-admin = %d %s", r.status, r.body)
	}
	if r := call(t, st, "GET", "/v2/status", "", ""); r.status != 401 {
		t.Fatalf("/v2/status without credentials = %d %s", r.status, r.body)
	}
	// Maps keep working on the last good policy.
	if r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", alice, `{"run_id":"run1"}`); r.status != 200 {
		t.Fatalf("map after a refused reload = %d %s", r.status, r.body)
	}
}
