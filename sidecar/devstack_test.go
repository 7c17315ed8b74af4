package sidecar

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
)

// Tests against the dev stack: the real broker, the IAM/STS simulator and the
// real AWS SDK, all on loopback.

// startStack starts a dev stack; stop shuts it down. A graceful-shutdown
// timeout of the stack is logged, not failed: it comes from the stack's own
// internal keep-alive connections (see the report on the dev stack) and says
// nothing about the sidecar.
func startStack(o devstack.Options) (st *devstack.Stack, stop func(logf func(string, ...any)), err error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.AWSAddr == "" {
		o.AWSAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err = devstack.Start(ctx, o)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	var once sync.Once
	return st, func(logf func(string, ...any)) {
		once.Do(func() {
			cancel()
			if err := st.Wait(); err != nil {
				logf("dev stack shutdown (ignored): %v", err)
			}
		})
	}, nil
}

// stackForTest starts a stack stopped at the end of the test.
func stackForTest(t testing.TB, o devstack.Options) *devstack.Stack {
	t.Helper()
	st, stop, err := startStack(o)
	if err != nil {
		t.Fatalf("start dev stack: %v", err)
	}
	t.Cleanup(func() { stop(t.Logf) })
	return st
}

var (
	sharedOnce sync.Once
	shared     *devstack.Stack
	sharedStop func(func(string, ...any))
	sharedErr  error
)

// sharedStack is one stack for the tests that do not need their own (each
// uses its own run ids); TestMain stops it.
func sharedStack(t testing.TB) *devstack.Stack {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedStop, sharedErr = startStack(devstack.Options{}) })
	if sharedErr != nil {
		t.Fatalf("start dev stack: %v", sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedStop != nil {
		sharedStop(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// accessProxy serves GET /access-token with token, like Domino's API proxy.
func accessProxy(t testing.TB, token string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/access-token" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, token)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// workloadToken fetches a projected-style token for run from the dev issuer.
func workloadToken(t testing.TB, brokerURL, run string) string {
	t.Helper()
	resp, err := http.Get(brokerURL + "/dev/workload-token?run_id=" + run)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("workload token: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// devPod prepares a pod for run on stack st, user token user; the config points
// at the stack (broker, STS) and an access-token proxy.
func devPod(t testing.TB, st *devstack.Stack, run, user string) (podEnv, Config) {
	t.Helper()
	e := newPodEnv(t, run)
	if err := os.WriteFile(e.token, []byte(workloadToken(t, st.BrokerURL, run)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config0(st.BrokerURL)
	cfg.APIProxy = accessProxy(t, user)
	cfg.STSEndpoint, cfg.Region = st.AWSURL, devstack.Region
	cfg.VerifyDeadline = 15 * time.Second
	return e, cfg
}

// startDaemon runs Run on a free loopback port and returns its base URL; it is
// stopped (and checked to stop cleanly) at the end of the test, or earlier by
// the returned function.
func startDaemon(t testing.TB, cfg Config, d Deps) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, hclog.NewNullLogger(), d, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func TestDevStackUsers(t *testing.T) {
	st := sharedStack(t)
	for _, tc := range []struct {
		user, run string
		profiles  []string
	}{
		{"alice-token", "alice-run-1", []string{"acme-list-bucket-role", "acme-read-bucket-role"}},
		{"bob-token", "bob-run-1", nil}, // one profile; name checked below
		{"carol-token", "carol-run-1", []string{}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			e, cfg := devPod(t, st, tc.run, tc.user)
			a := newAgent(t, cfg, Deps{})
			out := a.Refresh(context.Background())
			if !out.OK {
				t.Fatalf("refresh: %+v", out.Error)
			}
			switch {
			case tc.profiles != nil && strings.Join(out.Profiles, ",") != strings.Join(tc.profiles, ","):
				t.Errorf("profiles = %v, want %v", out.Profiles, tc.profiles)
			case tc.profiles == nil && len(out.Profiles) != 1:
				t.Errorf("profiles = %v, want one", out.Profiles)
			}
			if !a.Ready() || !verifyAllOK(out) || len(out.Verification) != len(out.Profiles) {
				t.Errorf("ready=%v verification=%+v", a.Ready(), out.Verification)
			}
			b, err := os.ReadFile(e.config)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Profiles) == 0 && len(b) != 0 {
				t.Errorf("no grants but config = %q", b)
			}
		})
	}
}

func verifyAllOK(o Outcome) bool {
	for _, r := range o.Verification {
		if !r.OK {
			return false
		}
	}
	return true
}

// TestDevStackSDKChain: the written config works with the AWS SDK's own
// credential chain (web identity → proxy role → source_profile → asset role).
func TestDevStackSDKChain(t *testing.T) {
	st := sharedStack(t)
	e, cfg := devPod(t, st, "sdk-chain-1", "alice-token")
	a := newAgent(t, cfg, Deps{})
	if out := a.Refresh(context.Background()); !out.OK {
		t.Fatalf("refresh: %+v", out.Error)
	}
	// The rendered config names the in-cluster token path; a copy points at ours.
	written, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "config")
	rewritten := strings.ReplaceAll(string(written), DefaultTokenFile, e.token)
	if rewritten == string(written) {
		t.Fatal("config does not reference the projected token path")
	}
	if err := os.WriteFile(copyPath, []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", st.AWSURL)
	t.Setenv("AWS_REGION", devstack.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_ROLE_ARN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hc := awshttp.NewBuildableClient()
	defer hc.GetTransport().CloseIdleConnections()
	for _, profile := range []string{"acme-list-bucket-role", "acme-read-bucket-role"} {
		awsCfg, err := config.LoadDefaultConfig(ctx,
			config.WithSharedConfigFiles([]string{copyPath}),
			config.WithSharedCredentialsFiles([]string{filepath.Join(t.TempDir(), "none")}),
			config.WithSharedConfigProfile(profile),
			config.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		id, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("%s: GetCallerIdentity through the SDK chain: %v", profile, err)
		}
		want := "arn:aws:sts::" + devstack.AssetsAccount + ":assumed-role/" + profile + "/"
		if !strings.HasPrefix(aws.ToString(id.Arn), want) {
			t.Errorf("%s: caller = %s, want %s…", profile, aws.ToString(id.Arn), want)
		}
	}
}

// TestDevStackPropagationDelay: with STS seeing IAM 3 s late, /readyz turns 200
// only once STS accepts the profiles — the file is written well before.
func TestDevStackPropagationDelay(t *testing.T) {
	const delay = 3 * time.Second
	st := sharedStack(t)
	st.Sim.SetPropagationDelay(delay)
	defer st.Sim.SetPropagationDelay(0)
	st.Sim.ResetCalls()
	// A fresh run each time: a subject written by an earlier run of this test is
	// already visible to STS.
	e, cfg := devPod(t, st, fmt.Sprintf("slow-iam-%d", time.Now().UnixNano()), "alice-token")
	start := time.Now()
	base, _ := startDaemon(t, cfg, Deps{})

	sawWrittenNotReady := false
	polltest.Until(t, "/readyz 200", func() bool {
		// /status first: readiness only turns on, so a ready /status
		// followed by a 503 from /readyz is a contradiction, whereas the
		// other order could see it turn on in between.
		var s Status
		getJSON(t, base+"/status", &s)
		code, _ := get(t, base+"/readyz")
		if code == 200 {
			return true
		}
		if s.Ready || s.Verification.State == VerifyOK {
			t.Fatalf("/readyz %d while /status says ready=%v state=%s", code, s.Ready, s.Verification.State)
		}
		if _, err := os.Stat(e.config); err == nil && len(s.Profiles) == 2 {
			sawWrittenNotReady = true
		}
		return false
	})
	elapsed := time.Since(start)
	var s Status
	getJSON(t, base+"/status", &s)
	if !s.Ready || s.Verification.State != VerifyOK || len(s.Verification.Results) != 2 {
		t.Fatalf("status = %+v", s)
	}
	for _, r := range s.Verification.Results {
		if !r.OK || r.Attempts < 2 {
			t.Errorf("%s: ok=%v after %d attempts; want success after refusals", r.Profile, r.OK, r.Attempts)
		}
	}
	if !sawWrittenNotReady {
		t.Error("never observed the written-but-unverified state")
	}
	if elapsed < delay {
		t.Errorf("ready after %v, before the %v propagation delay", elapsed, delay)
	}
	calls := st.Sim.Calls()["AssumeRoleWithWebIdentity"]
	if calls <= 2 {
		t.Errorf("STS AssumeRoleWithWebIdentity calls = %d, want refusals before success", calls)
	}
	t.Logf("ready after %v, %d STS calls", elapsed.Round(time.Millisecond), calls)
}

// freeAddr reserves a loopback port and releases it for a server started later.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDevStackBrokerDownAtStart: the sidecar starts first, fails against the
// closed port with backoff, and succeeds once the stack comes up.
func TestDevStackBrokerDownAtStart(t *testing.T) {
	brokerAddr, awsAddr := freeAddr(t), freeAddr(t)
	e := newPodEnv(t, "late-broker-1")
	if err := os.WriteFile(e.token, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config0("http://" + brokerAddr)
	cfg.APIProxy = accessProxy(t, "bob-token")
	cfg.STSEndpoint, cfg.Region = "http://"+awsAddr, devstack.Region
	cfg.BackoffInitial, cfg.BackoffMax = 50*time.Millisecond, 300*time.Millisecond
	base, stopDaemon := startDaemon(t, cfg, Deps{VerifyRetry: backoffFast})

	var s Status
	polltest.Until(t, "three failures against the closed port", func() bool {
		getJSON(t, base+"/status", &s)
		return s.ConsecutiveFailures >= 3
	})
	if s.Ready || s.LastError == nil || s.LastError.Stage != StageBroker || !strings.Contains(s.LastError.Message, "connection refused") {
		t.Fatalf("status while the broker is down = %+v", s.LastError)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("readyz = %d while the broker is down", code)
	}

	st := stackForTest(t, devstack.Options{Addr: brokerAddr, AWSAddr: awsAddr})
	t.Cleanup(stopDaemon) // runs before the stack's cleanup
	if err := os.WriteFile(e.token, []byte(workloadToken(t, st.BrokerURL, "late-broker-1")), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReady(t, base)
	getJSON(t, base+"/status", &s)
	if len(s.Profiles) != 1 || s.ConsecutiveFailures != 0 || s.Verification.State != VerifyOK {
		t.Errorf("status after recovery = %+v", s)
	}
}

// TestDevStackBrokerDownLater: once the broker is gone (its address refuses
// connections), refreshes fail, the last good file stays and /status says why.
func TestDevStackBrokerDownLater(t *testing.T) {
	st := sharedStack(t)
	// The sidecar reaches the broker through a front that can go away.
	target, err := url.Parse(st.BrokerURL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer front.Close()
	e, cfg := devPod(t, st, "gone-later-1", "alice-token")
	cfg.BrokerEndpoint = front.URL
	a := newAgent(t, cfg, Deps{})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if code, body := get(t, srv.URL+"/refresh"); code != 200 {
		t.Fatalf("refresh: %d %s", code, body)
	}
	good, err := os.ReadFile(e.config)
	if err != nil || len(good) == 0 {
		t.Fatalf("config: %q %v", good, err)
	}
	a.Close()
	front.Close()
	code, body := get(t, srv.URL+"/refresh")
	if code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("refresh with the broker gone = %d %s", code, body)
	}
	if now, _ := os.ReadFile(e.config); string(now) != string(good) {
		t.Error("the last good config was not kept")
	}
	var s Status
	getJSON(t, srv.URL+"/status", &s)
	if !s.Ready || len(s.Profiles) != 2 || s.LastError == nil || s.LastError.Stage != StageBroker || s.LastSuccess.IsZero() {
		t.Errorf("status = %+v", s)
	}
	if code, _ := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("readyz = %d: a verified config on disk should stay ready", code)
	}
}

// TestDevStackUnauthenticated: the real broker's 401 reaches /status.
func TestDevStackUnauthenticated(t *testing.T) {
	st := sharedStack(t)
	_, cfg := devPod(t, st, "nobody-1", "not-a-user-token")
	a := newAgent(t, cfg, Deps{})
	out := a.Refresh(context.Background())
	s := a.Status()
	if out.OK || s.LastError == nil || s.LastError.Status != 401 || s.LastError.Code == "" || s.LastError.Message == "" || s.LastError.RequestID == "" {
		t.Fatalf("last_error = %+v", s.LastError)
	}
	if strings.Contains(fmt.Sprint(s.LastError), "not-a-user-token") {
		t.Error("token in the error")
	}
}

// TestDevStackOnce: the one-shot mode writes and verifies, then returns.
func TestDevStackOnce(t *testing.T) {
	st := sharedStack(t)
	e, cfg := devPod(t, st, "once-1", "bob-token")
	cfg.OnceTimeout = 20 * time.Second
	if err := RunOnce(context.Background(), cfg, nil, Deps{VerifyRetry: backoffFast}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(e.config); err != nil || !strings.Contains(string(b), "[profile src_") {
		t.Errorf("config = %q, %v", b, err)
	}
}
