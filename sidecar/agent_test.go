package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
	"github.com/irsa-broker/irsa-broker/sidecar/backoff"
	"github.com/irsa-broker/irsa-broker/sidecar/brokerclient"
)

const (
	twoProfiles = `[profile acme-list-bucket-role]
source_profile = src_acme-list-bucket-role
role_arn=arn:aws:iam::524112250363:role/acme-list-bucket-role
[profile src_acme-list-bucket-role]
web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token
role_arn=arn:aws:iam::946429944765:role/acme-list-bucket-role
[profile acme-read-bucket-role]
source_profile = src_acme-read-bucket-role
role_arn=arn:aws:iam::524112250363:role/acme-read-bucket-role
[profile src_acme-read-bucket-role]
web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token
role_arn=arn:aws:iam::946429944765:role/acme-read-bucket-role
`
	podTokenValue = "eyJ.secret-pod-token-value.sig"
)

// podEnv is a pod's filesystem: labels, projected token, config path.
type podEnv struct {
	dir, labels, token, config string
}

func newPodEnv(t testing.TB, runID string) podEnv {
	t.Helper()
	dir := t.TempDir()
	e := podEnv{dir: dir, labels: filepath.Join(dir, "podinfo", "labels"), token: filepath.Join(dir, "token"), config: filepath.Join(dir, "aws", "config")}
	if err := os.MkdirAll(filepath.Dir(e.labels), 0o755); err != nil {
		t.Fatal(err)
	}
	e.setLabels(t, fmt.Sprintf("app.kubernetes.io/name=%q\ndominodatalab.com/execution-id=%q", "run-"+runID, runID))
	if err := os.WriteFile(e.token, []byte(podTokenValue), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e podEnv) setLabels(t testing.TB, s string) {
	t.Helper()
	if err := os.WriteFile(e.labels, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e podEnv) config0(broker string) Config {
	c := DefaultConfig()
	c.Addr = "127.0.0.1:0"
	c.BrokerEndpoint = broker
	c.APIProxy = "http://127.0.0.1:1"
	c.PodInfoPath, c.TokenFile, c.ConfigFile = e.labels, e.token, e.config
	c.VerifyDeadline = 2 * time.Second
	c.BackoffInitial, c.BackoffMax = 50*time.Millisecond, 200*time.Millisecond
	return c
}

// fakeBroker answers with a scripted sequence of results (the last repeats).
type fakeBroker struct {
	mu      sync.Mutex
	results []func() (string, error)
	calls   int
	reqs    []brokerapi.MapRequest
	gate    chan struct{} // when set, Map blocks until it is closed
}

func (f *fakeBroker) Map(ctx context.Context, r brokerapi.MapRequest) (string, error) {
	f.mu.Lock()
	i := min(f.calls, len(f.results)-1)
	f.calls++
	f.reqs = append(f.reqs, r)
	res, gate := f.results[i], f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return res()
}

func (f *fakeBroker) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func ok(s string) func() (string, error) { return func() (string, error) { return s, nil } }
func fails(err error) func() (string, error) {
	return func() (string, error) { return "", err }
}

// fakeSTS accepts roles once allowed; counts calls.
type fakeSTS struct {
	mu      sync.Mutex
	denied  map[string]bool
	calls   int
	lastTok string
}

func (f *fakeSTS) AssumeRoleWithWebIdentity(_ context.Context, in *sts.AssumeRoleWithWebIdentityInput, _ ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.lastTok = *in.WebIdentityToken
	if f.denied[*in.RoleArn] {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	}
	return &sts.AssumeRoleWithWebIdentityOutput{}, nil
}

func (f *fakeSTS) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeSTS) allow(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.denied, arn)
}

var backoffFast = fastVerify()

func fastVerify() backoff.Policy {
	return backoff.Policy{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}
}

func newAgent(t testing.TB, cfg Config, d Deps) *Agent {
	t.Helper()
	if d.VerifyRetry.Initial == 0 {
		d.VerifyRetry = fastVerify()
	}
	a, err := New(context.Background(), cfg, nil, d)
	if err != nil {
		t.Fatal(err)
	}
	// Before any server started earlier in the test shuts down: an idle
	// keep-alive connection would hold its graceful shutdown.
	t.Cleanup(a.Close)
	return a
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRefreshWritesVerifiesOnce(t *testing.T) {
	e := newPodEnv(t, "r1")
	e.setLabels(t, `dominodatalab.com/execution-id="r1"`+"\n"+`dominodatalab.com/irsa-workload-type="cluster-worker"`)
	fb := &fakeBroker{results: []func() (string, error){ok(twoProfiles)}}
	fs := &fakeSTS{}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: fs})
	if a.Ready() {
		t.Fatal("ready before any refresh")
	}
	out := a.Refresh(context.Background())
	if !out.OK || !out.Changed || len(out.Verification) != 2 {
		t.Fatalf("outcome = %+v", out)
	}
	if got := strings.Join(out.Profiles, ","); got != "acme-list-bucket-role,acme-read-bucket-role" {
		t.Errorf("profiles = %s", got)
	}
	if readFile(t, e.config) != twoProfiles {
		t.Error("config file content differs from the broker's answer")
	}
	if fb.reqs[0] != (brokerapi.MapRequest{RunID: "r1", WorkloadType: "cluster-worker"}) {
		t.Errorf("request = %+v", fb.reqs[0])
	}
	if fs.Calls() != 2 || fs.lastTok != podTokenValue {
		t.Errorf("STS calls = %d (token %q), want 2 with the pod's token", fs.Calls(), fs.lastTok)
	}
	st := a.Status()
	if !a.Ready() || !st.Ready || st.Verification.State != VerifyOK || st.RunID != "r1" || st.WorkloadType != "cluster-worker" || st.LastSuccess.IsZero() {
		t.Errorf("status = %+v", st)
	}

	// Same content: no rewrite, no new STS calls.
	before, _ := os.Stat(e.config)
	out = a.Refresh(context.Background())
	after, _ := os.Stat(e.config)
	if !out.OK || out.Changed || !os.SameFile(before, after) {
		t.Errorf("unchanged refresh rewrote: %+v", out)
	}
	if fs.Calls() != 2 {
		t.Errorf("STS called again for verified content: %d", fs.Calls())
	}
}

func TestVerificationGatesReadiness(t *testing.T) {
	e := newPodEnv(t, "r1")
	fb := &fakeBroker{results: []func() (string, error){ok(twoProfiles)}}
	fs := &fakeSTS{denied: map[string]bool{"arn:aws:iam::946429944765:role/acme-read-bucket-role": true}}
	cfg := e.config0("http://broker")
	cfg.VerifyDeadline = 200 * time.Millisecond
	a := newAgent(t, cfg, Deps{Broker: fb, STS: fs})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	out := a.Refresh(context.Background())
	if out.OK || out.Error.Stage != StageVerify || out.Error.Code != "AccessDenied" || !strings.Contains(out.Error.Message, "src_acme-read-bucket-role") {
		t.Fatalf("outcome = %+v", out)
	}
	if readFile(t, e.config) != twoProfiles {
		t.Error("config not written before verification")
	}
	code, body := get(t, srv.URL+"/readyz")
	if code != 503 || !strings.Contains(body, "not accepted by STS") {
		t.Errorf("readyz = %d %s", code, body)
	}
	var st Status
	getJSON(t, srv.URL+"/status", &st)
	if st.Ready || st.Verification.State != VerifyFailed || st.LastError == nil || !strings.Contains(st.LastError.Message, "Not authorized to perform sts:AssumeRoleWithWebIdentity") {
		t.Errorf("status = %+v", st)
	}

	fs.allow("arn:aws:iam::946429944765:role/acme-read-bucket-role")
	if out := a.Refresh(context.Background()); !out.OK {
		t.Fatalf("after IAM caught up: %+v", out.Error)
	}
	if code, _ := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("readyz = %d after verification", code)
	}
}

func TestVerificationDisabled(t *testing.T) {
	e := newPodEnv(t, "r1")
	cfg := e.config0("http://broker")
	cfg.Verify = false
	fs := &fakeSTS{}
	a := newAgent(t, cfg, Deps{Broker: &fakeBroker{results: []func() (string, error){ok(twoProfiles)}}, STS: fs})
	if out := a.Refresh(context.Background()); !out.OK || len(out.Verification) != 0 {
		t.Fatalf("outcome = %+v", out)
	}
	if !a.Ready() || fs.Calls() != 0 || a.Status().Verification.State != VerifyDisabled {
		t.Errorf("ready=%v sts=%d state=%s", a.Ready(), fs.Calls(), a.Status().Verification.State)
	}
}

func TestEmptyConfigIsReady(t *testing.T) {
	e := newPodEnv(t, "r1")
	fs := &fakeSTS{}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: &fakeBroker{results: []func() (string, error){ok("")}}, STS: fs})
	out := a.Refresh(context.Background())
	if !out.OK || len(out.Profiles) != 0 || !a.Ready() || fs.Calls() != 0 {
		t.Fatalf("outcome = %+v ready=%v", out, a.Ready())
	}
	if fi, err := os.Stat(e.config); err != nil || fi.Size() != 0 {
		t.Errorf("empty config file: %v %v", fi, err)
	}
}

// TestLastGoodFileKept: after a success, broker failures and a malformed answer
// leave the file as it was and surface in /status; readiness stays.
func TestLastGoodFileKept(t *testing.T) {
	e := newPodEnv(t, "r1")
	fb := &fakeBroker{results: []func() (string, error){
		ok(twoProfiles),
		fails(&brokerclient.Error{Status: 503, Code: "iam_unavailable", Message: "IAM is unavailable", RequestID: "req-9"}),
		fails(errors.New("call broker: dial tcp 127.0.0.1:6000: connect: connection refused")),
		ok("<html>502 Bad Gateway</html>"),
	}}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
	if out := a.Refresh(context.Background()); !out.OK {
		t.Fatal(out.Error)
	}
	for i, want := range []struct{ stage, msg string }{
		{StageBroker, "IAM is unavailable"},
		{StageBroker, "connection refused"},
		{StageParse, "malformed"},
	} {
		out := a.Refresh(context.Background())
		if out.OK || out.Error.Stage != want.stage || !strings.Contains(out.Error.Message, want.msg) {
			t.Fatalf("failure %d: outcome = %+v", i, out.Error)
		}
		if readFile(t, e.config) != twoProfiles {
			t.Fatalf("failure %d replaced the last good file", i)
		}
		st := a.Status()
		if !st.Ready || st.ConsecutiveFailures != i+1 || st.LastError.Stage != want.stage || len(st.Profiles) != 2 {
			t.Fatalf("failure %d: status = %+v", i, st)
		}
	}
	if st := a.Status(); st.LastError.At.Before(st.LastSuccess) {
		t.Error("last error older than last success")
	}
}

// TestBrokerErrorsInStatus: 401/403/404 from a real HTTP broker reach /status
// with the broker's code, message and request id.
func TestBrokerErrorsInStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		msg    string
	}{
		{401, "unauthenticated", "missing or invalid credentials"},
		{403, "forbidden", "run r1 was started by another user"},
		{404, "run_not_found", "no workload with run id r1"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"error":{"code":%q,"message":%q,"request_id":"req-%d"}}`, tc.code, tc.msg, tc.status)
			}))
			defer broker.Close()
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "alice-token") }))
			defer proxy.Close()
			e := newPodEnv(t, "r1")
			cfg := e.config0(broker.URL)
			cfg.APIProxy = proxy.URL
			a := newAgent(t, cfg, Deps{STS: &fakeSTS{}})
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()

			code, body := get(t, srv.URL+"/refresh")
			if code != 503 || !strings.Contains(body, tc.msg) {
				t.Errorf("/refresh = %d %s", code, body)
			}
			var st Status
			getJSON(t, srv.URL+"/status", &st)
			le := st.LastError
			if le == nil || le.Stage != StageBroker || le.Status != tc.status || le.Code != tc.code || le.RequestID != fmt.Sprintf("req-%d", tc.status) || !strings.Contains(le.Message, tc.msg) {
				t.Errorf("last_error = %+v", le)
			}
			if strings.Contains(body, "alice-token") {
				t.Error("token in /refresh body")
			}
		})
	}
}

func TestPodInfoErrorsInStatus(t *testing.T) {
	e := newPodEnv(t, "r1")
	fb := &fakeBroker{results: []func() (string, error){ok("")}}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
	for _, tc := range []struct{ labels, want string }{
		{`app.kubernetes.io/name="jupyter"`, "no run id"},
		{`dominodatalab.com/execution-id="BAD_ID"`, "run id must be"},
		{`dominodatalab.com/execution-id=r1`, "line 1"},
	} {
		e.setLabels(t, tc.labels)
		out := a.Refresh(context.Background())
		if out.OK || out.Error.Stage != StagePodInfo || !strings.Contains(out.Error.Message, tc.want) {
			t.Errorf("labels %s: outcome = %+v", tc.labels, out.Error)
		}
	}
	os.Remove(e.labels)
	if out := a.Refresh(context.Background()); out.OK || !errors.Is(out.Error, os.ErrNotExist) {
		t.Errorf("missing labels: %+v", out.Error)
	}
	if fb.Calls() != 0 {
		t.Errorf("broker called %d times without a run id", fb.Calls())
	}
	e.setLabels(t, `app.kubernetes.io/name="run-r2"`)
	if out := a.Refresh(context.Background()); !out.OK || fb.reqs[0].RunID != "r2" {
		t.Errorf("recovered: %+v %+v", out, fb.reqs)
	}
}

// TestRunBackoffFakeClock drives Run with a fake clock: failures back off
// exponentially (capped, Retry-After honoured), success waits the interval.
func TestRunBackoffFakeClock(t *testing.T) {
	e := newPodEnv(t, "r1")
	unavailable := &brokerclient.Error{Status: 503, Code: "iam_unavailable", RetryAfter: 7 * time.Second}
	down := errors.New("connection refused")
	fb := &fakeBroker{results: []func() (string, error){fails(unavailable), fails(down), fails(down), fails(down), fails(down), ok("")}}
	clock := backoff.NewFakeClock(time.Unix(1_700_000_000, 0))
	cfg := e.config0("http://broker")
	cfg.BackoffInitial, cfg.BackoffMax, cfg.RefreshInterval = time.Second, 5*time.Second, 5*time.Minute
	a := newAgent(t, cfg, Deps{Broker: fb, STS: &fakeSTS{}, Clock: clock, Rand: func() float64 { return 1 }})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- a.Run(runCtx) }()
	for i := 1; i <= 6; i++ {
		if err := clock.WaitForWaits(ctx, i); err != nil {
			t.Fatalf("wait %d: %v (waits so far %v)", i, err, clock.Waits())
		}
		if i == 3 {
			st := a.Status()
			if st.ConsecutiveFailures != 3 || !st.NextRefresh.Equal(clock.Now().Add(4*time.Second)) {
				t.Errorf("status mid-backoff: failures=%d next=%v now=%v", st.ConsecutiveFailures, st.NextRefresh, clock.Now())
			}
		}
		clock.Advance(time.Hour)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{7 * time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 330 * time.Second}
	if got := clock.Waits()[:6]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if !a.Ready() {
		t.Error("not ready after the final success")
	}
}

// TestRefreshCoalesced: concurrent /refresh calls share one broker call.
func TestRefreshCoalesced(t *testing.T) {
	e := newPodEnv(t, "r1")
	gate := make(chan struct{})
	fb := &fakeBroker{results: []func() (string, error){ok(twoProfiles)}, gate: gate}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // a failure below lets the blocked requests, and srv.Close, finish
	const n = 8
	var wg sync.WaitGroup
	var okCount atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out Outcome
			if code := getJSON(t, srv.URL+"/refresh", &out); code == 200 && out.OK && len(out.Profiles) == 2 {
				okCount.Add(1)
			}
		}()
	}
	// Every request shares the first refresh, blocked in the broker.
	polltest.Until(t, fmt.Sprint(n, " callers sharing the refresh in flight"), func() bool {
		if c := fb.Calls(); c > 1 {
			t.Fatalf("broker calls = %d while the first is blocked, want 1 (coalesced)", c)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inflight != nil && a.inflight.callers == n
	})
	release()
	wg.Wait()
	if okCount.Load() != n {
		t.Errorf("%d of %d callers got the outcome", okCount.Load(), n)
	}
	if c := fb.Calls(); c != 1 {
		t.Errorf("broker calls = %d, want 1 (coalesced)", c)
	}
	// A caller that gives up does not cancel the shared refresh.
	fb.gate = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if out := a.Refresh(ctx); out.OK || out.Error.Stage != "request" {
		t.Errorf("abandoned caller: %+v", out)
	}
	close(fb.gate)
	if out := a.Refresh(context.Background()); !out.OK {
		t.Errorf("after release: %+v", out.Error)
	}
}

func TestOnce(t *testing.T) {
	t.Run("transient then success", func(t *testing.T) {
		e := newPodEnv(t, "r1")
		fb := &fakeBroker{results: []func() (string, error){fails(errors.New("connection refused")), fails(&brokerclient.Error{Status: 502}), ok(twoProfiles)}}
		a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
		if err := a.Once(context.Background()); err != nil {
			t.Fatal(err)
		}
		if fb.Calls() != 3 || readFile(t, e.config) != twoProfiles {
			t.Errorf("calls = %d", fb.Calls())
		}
	})
	t.Run("403 is final", func(t *testing.T) {
		e := newPodEnv(t, "r1")
		fb := &fakeBroker{results: []func() (string, error){fails(&brokerclient.Error{Status: 403, Code: "forbidden", Message: "not yours"})}}
		a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
		err := a.Once(context.Background())
		var be *brokerclient.Error
		if !errors.As(err, &be) || be.Status != 403 || fb.Calls() != 1 {
			t.Fatalf("err = %v after %d calls", err, fb.Calls())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := newPodEnv(t, "r1")
		fb := &fakeBroker{results: []func() (string, error){fails(errors.New("connection refused"))}}
		a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := a.Once(ctx)
		if err == nil || !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHealthzAndMetrics(t *testing.T) {
	e := newPodEnv(t, "r1")
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: &fakeBroker{results: []func() (string, error){ok(twoProfiles)}}, STS: &fakeSTS{}})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != LegacyHealthBody {
		t.Errorf("healthz = %d %q", code, body)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"status": "Healthy"`) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("healthz json = %s", b)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "waiting for the first refresh") {
		t.Errorf("readyz before refresh = %d %s", code, body)
	}
	if code, _ := get(t, srv.URL+"/refresh"); code != 200 {
		t.Errorf("refresh = %d", code)
	}
	_, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`irsa_sidecar_refresh_total{result="success"} 1`,
		"irsa_sidecar_config_writes_total 1",
		`irsa_sidecar_verifications_total{result="success"} 2`,
		"irsa_sidecar_ready 1",
		"irsa_sidecar_profiles 2",
		"irsa_sidecar_refresh_duration_seconds_count 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, _ := get(t, srv.URL+"/nope"); code != 404 {
		t.Errorf("unknown path = %d", code)
	}
}

// TestRunServesAndShutsDown runs the daemon on a real listener with real token
// sources, checks it serves, that no token reaches the logs, and that it stops
// on cancel.
func TestRunServesAndShutsDown(t *testing.T) {
	const access = "alice-secret-access-token"
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+access || r.Header.Get(brokerapi.HeaderPodToken) != podTokenValue {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthenticated","message":"bad credentials"}}`)
			return
		}
		io.WriteString(w, twoProfiles)
	}))
	defer broker.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, access) }))
	defer proxy.Close()
	e := newPodEnv(t, "r1")
	cfg := e.config0(broker.URL)
	cfg.APIProxy = proxy.URL
	cfg.Verify = false
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace, JSONFormat: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log, Deps{}, ln) }()
	base := "http://" + ln.Addr().String()
	waitReady(t, base)
	if readFile(t, e.config) != twoProfiles {
		t.Error("config not written")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
	if readFile(t, e.config) != twoProfiles {
		t.Error("config removed or changed at shutdown")
	}
	out := logs.String()
	if strings.Contains(out, access) || strings.Contains(out, "secret-pod-token") {
		t.Errorf("a token reached the logs:\n%s", out)
	}
	if !strings.Contains(out, `"@message":"AWS config written"`) || !strings.Contains(out, `"@message":"stopped"`) {
		t.Errorf("logs lack the expected JSON events:\n%s", out)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := DefaultConfig()
	if _, err := New(context.Background(), c, nil, Deps{}); err == nil || !strings.Contains(err.Error(), "DOMINO_IRSA_ENDPOINT") {
		t.Errorf("missing broker: %v", err)
	}
	c.BrokerEndpoint = "irsa-svc"
	c.RefreshInterval = 0
	c.BackoffMax = time.Millisecond
	err := c.Validate()
	for _, want := range []string{"http:// or https://", "refresh interval", "backoff max"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want mention of %q", err, want)
		}
	}
	c = DefaultConfig()
	c.BrokerEndpoint = "https://irsa-svc"
	c.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(context.Background(), c, nil, Deps{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA: %v", err)
	}
}

// --- helpers ---

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	code, body := get(t, url)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Errorf("GET %s: %v in %s", url, err, body)
	}
	return code
}

// waitReady waits until base answers /readyz with 200.
func waitReady(t testing.TB, base string) {
	t.Helper()
	polltest.UntilErr(t, base+"/readyz 200", func() (bool, error) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == 200, fmt.Errorf("HTTP %d", resp.StatusCode)
	})
}
