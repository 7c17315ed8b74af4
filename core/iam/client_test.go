package iam_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/internal/awssim"
	"github.com/irsa-broker/irsa-broker/internal/awssim/awssimtest"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	acct     = "946429944765"
	provider = "oidc.eks.us-west-2.amazonaws.com/id/ABC"
	trustDoc = `{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::946429944765:oidc-provider/` + provider + `"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringLike": {"` + provider + `:sub": ["system:serviceaccount:domino-compute:run-1"]}}
  }]
}`
)

// isolateAWSEnv keeps the developer's AWS settings out of the SDK's default
// configuration loading.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

var keyN int

type fixture struct {
	sim *awssim.Server
	url string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	isolateAWSEnv(t)
	sim, url := awssimtest.StartTest(t, awssim.Options{Logger: hclog.NewNullLogger()})
	sim.AddAccount(acct, 0)
	if _, err := sim.AddOIDCProvider(acct, "https://"+provider, []string{"sts.amazonaws.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.CreateRole(acct, "acme-x", "/", trustDoc); err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, url: url}
}

// client makes a client with a fresh key, denied the given actions.
func (f *fixture) client(t *testing.T, opts iam.Options, denied ...string) *iam.Client {
	t.Helper()
	keyN++
	key := fmt.Sprintf("AKIATEST%012d", keyN)
	if err := f.sim.AddAccessKey(acct, key, "secret-"+key, denied...); err != nil {
		t.Fatal(err)
	}
	if opts.Credentials == nil {
		opts.Credentials = credentials.NewStaticCredentialsProvider(key, "secret-"+key, "")
	}
	opts.Endpoint = f.url
	if opts.RetryBaseDelay == 0 {
		opts.RetryBaseDelay, opts.MaxBackoff = 5*time.Millisecond, 200*time.Millisecond
	}
	c, err := iam.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientReadWrite(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(t, iam.Options{Region: "us-west-2"})

	r, err := c.GetRole(ctx, "acme-x")
	if err != nil {
		t.Fatal(err)
	}
	if r.TrustPolicy != trustDoc {
		t.Fatalf("trust policy not decoded:\n%s", r.TrustPolicy)
	}
	if r.ARN != "arn:aws:iam::"+acct+":role/acme-x" || r.Name != "acme-x" || r.Path != "/" {
		t.Fatalf("role %+v", r)
	}
	newDoc := strings.ReplaceAll(trustDoc, "run-1", "run-2")
	if err := c.UpdateTrustPolicy(ctx, "acme-x", newDoc); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.sim.TrustPolicy(acct, "acme-x"); got != newDoc {
		t.Fatalf("simulator holds %s", got)
	}
	if got, err := c.GetRole(ctx, "acme-x"); err != nil || got.TrustPolicy != newDoc {
		t.Fatalf("GetRole trust policy = %q, %v", got.TrustPolicy, err)
	}
}

func TestClientTypedErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.sim.SetQuota(acct, 2048)
	c := f.client(t, iam.Options{})
	denied := f.client(t, iam.Options{}, "iam:UpdateAssumeRolePolicy")
	wrongSecret := f.client(t, iam.Options{Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWNKEY000000", "nope", "")})

	big := strings.Replace(trustDoc, `"system:serviceaccount:domino-compute:run-1"`,
		`"`+strings.Repeat("system:serviceaccount:domino-compute:run-x,", 60)+`"`, 1)
	tests := []struct {
		name   string
		call   func() error
		kind   iam.Kind
		prefix string
	}{
		{"no such role", func() error { _, err := c.GetRole(ctx, "missing"); return err },
			iam.KindNoSuchEntity, "iam:GetRole on role missing: NoSuchEntity: "},
		{"malformed", func() error { return c.UpdateTrustPolicy(ctx, "acme-x", `{"Version":`) },
			iam.KindMalformedPolicy, "iam:UpdateAssumeRolePolicy on role acme-x: MalformedPolicyDocument: "},
		{"over quota", func() error { return c.UpdateTrustPolicy(ctx, "acme-x", big) },
			iam.KindLimitExceeded, "iam:UpdateAssumeRolePolicy on role acme-x: LimitExceeded: "},
		{"denied", func() error { return denied.UpdateTrustPolicy(ctx, "acme-x", trustDoc) },
			iam.KindAccessDenied, "iam:UpdateAssumeRolePolicy on role acme-x: AccessDenied: "},
		{"unknown key", func() error { _, err := wrongSecret.GetRole(ctx, "acme-x"); return err },
			iam.KindAccessDenied, "iam:GetRole on role acme-x: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *iam.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *iam.Error", err, err)
			}
			if e.Kind != tt.kind || !strings.HasPrefix(err.Error(), tt.prefix) || e.Message == "" {
				t.Fatalf("kind %v, message %q; want %v and prefix %q", e.Kind, err.Error(), tt.kind, tt.prefix)
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
	if got, _ := f.sim.TrustPolicy(acct, "acme-x"); got != trustDoc {
		t.Fatal("a failed call changed the role")
	}
}

func TestClientQuota(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.sim.SetQuota(acct, 4096)
	c := f.client(t, iam.Options{})
	f.sim.ResetCalls()
	for range 3 {
		q, err := c.TrustPolicySizeQuota(ctx)
		if err != nil || q != 4096 {
			t.Fatalf("quota %d, %v", q, err)
		}
	}
	if n := f.sim.Calls()["GetAccountSummary"]; n != 1 {
		t.Fatalf("GetAccountSummary called %d times, want 1 (cached)", n)
	}

	noSummary := f.client(t, iam.Options{QuotaFallback: 3000}, "iam:GetAccountSummary")
	q, err := noSummary.TrustPolicySizeQuota(ctx)
	if err != nil || q != 3000 {
		t.Fatalf("fallback: %d, %v", q, err)
	}
	defaultFallback := f.client(t, iam.Options{}, "iam:GetAccountSummary")
	if q, err := defaultFallback.TrustPolicySizeQuota(ctx); err != nil || q != iam.DefaultQuotaFallback {
		t.Fatalf("default fallback: %d, %v", q, err)
	}
}

func TestClientRetriesThrottling(t *testing.T) {
	for _, mode := range []aws.RetryMode{aws.RetryModeStandard, aws.RetryModeAdaptive} {
		t.Run(string(mode), func(t *testing.T) { testRetriesThrottling(t, mode) })
	}
}

func testRetriesThrottling(t *testing.T, mode aws.RetryMode) {
	ctx := context.Background()
	f := newFixture(t)
	reg := prometheus.NewPedanticRegistry()
	c := f.client(t, iam.Options{Registerer: reg, MaxAttempts: 20, RetryMode: mode})
	start := time.Now()
	defer func() { t.Logf("%s: %v", mode, time.Since(start)) }()
	// Adaptive mode slows to a crawl under random throttling (see
	// Options.RetryMode), so it gets fewer calls and only the token bucket.
	gets, updates := 10, 10
	f.sim.SetThrottle("GetRole", 20, 2)
	if mode == aws.RetryModeStandard {
		f.sim.SetFailureProbability("UpdateAssumeRolePolicy", 0.5)
	} else {
		gets, updates = 5, 0
	}
	f.sim.SetLatency("", 5*time.Millisecond)

	var wg sync.WaitGroup
	errs := make(chan error, gets+updates)
	for range gets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.GetRole(ctx, "acme-x"); err != nil {
				errs <- err
			}
		}()
	}
	for range updates {
		if err := c.UpdateTrustPolicy(ctx, "acme-x", trustDoc); err != nil {
			errs <- err
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed despite retries: %v", err)
	}
	th := f.sim.Throttled()
	if th["GetRole"] == 0 || (updates > 0 && th["UpdateAssumeRolePolicy"] == 0) {
		t.Fatalf("no throttling happened (%v): the test proves nothing", th)
	}

	// Metrics: attempts include the retries.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	if got["irsa_iam_call_duration_seconds,operation=GetRole"] != float64(gets) {
		t.Errorf("GetRole calls observed: %v", got)
	}
	if a := got["irsa_iam_call_attempts_total,operation=GetRole"]; a != float64(gets+th["GetRole"]) {
		t.Errorf("GetRole attempts %v, want %d", a, gets+th["GetRole"])
	}
}

func TestClientGivesUpTyped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	reg := prometheus.NewPedanticRegistry()
	c := f.client(t, iam.Options{MaxAttempts: 3, Registerer: reg})
	f.sim.SetFailureProbability("GetRole", 1)
	_, err := c.GetRole(ctx, "acme-x")
	if !iam.IsKind(err, iam.KindThrottled) {
		t.Fatalf("got %v, want KindThrottled", err)
	}
	if n := f.sim.Calls()["GetRole"]; n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}

	// CallTimeout bounds the call: ctx has no deadline, so a DeadlineExceeded
	// can only be the per-call one, and the SDK does not retry after it.
	slow := f.client(t, iam.Options{CallTimeout: 100 * time.Millisecond, Registerer: reg})
	f.sim.SetFailureProbability("GetRole", 0)
	f.sim.SetLatency("GetRole", time.Minute)
	f.sim.ResetCalls()
	_, err = slow.GetRole(ctx, "acme-x")
	if !iam.IsKind(err, iam.KindUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want KindUnavailable wrapping DeadlineExceeded", err)
	}
	if n := f.sim.Calls()["GetRole"]; n != 1 {
		t.Fatalf("%d attempts after the deadline, want 1", n)
	}
}
