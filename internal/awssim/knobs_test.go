package awssim

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/go-jose/go-jose/v4"
)

func TestThrottlingIsRetried(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	must[string](t)(f.sim.CreateRole(proxyAcct, "r", "", trustAnyAWS))
	c := f.iam(proxyKey, proxySecret)

	// Always throttled: the SDK's standard retryer makes all its attempts, then gives up
	// with the Throttling code.
	f.sim.SetFailureProbability("GetRole", 1)
	_, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	wantCode(t, err, "Throttling")
	if !strings.Contains(err.Error(), "Rate exceeded") || !strings.Contains(err.Error(), "exceeded maximum number of attempts, 3") {
		t.Fatalf("error %v", err)
	}
	if got := f.sim.Calls()["GetRole"]; got != 3 {
		t.Fatalf("GetRole calls %d, want 3 attempts", got)
	}
	if got := f.sim.Throttled()["GetRole"]; got != 3 {
		t.Fatalf("throttled %d, want 3", got)
	}
	f.sim.SetFailureProbability("GetRole", 0)

	// Token bucket: 20/s with burst 1. The second call is throttled once and succeeds on
	// retry after the bucket refills.
	f.sim.ResetCalls()
	f.sim.SetThrottle("GetRole", 20, 1)
	slow := iam.NewFromConfig(awsConfig(proxyKey, proxySecret, ""), func(o *iam.Options) {
		o.BaseEndpoint = aws.String(f.url)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 80 * time.Millisecond, nil })
			so.RateLimiter = noRateLimit{}
		})
	})
	for i := 0; i < 2; i++ {
		if _, err := slow.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if calls, thr := f.sim.Calls()["GetRole"], f.sim.Throttled()["GetRole"]; thr < 1 || calls != 2+thr {
		t.Fatalf("calls %d throttled %d: want the second call throttled and retried", calls, thr)
	}
	// Other actions are not affected by GetRole's bucket.
	for i := 0; i < 5; i++ {
		if _, err := c.ListRoles(ctx, &iam.ListRolesInput{}); err != nil {
			t.Fatal(err)
		}
	}
	f.sim.SetThrottle("GetRole", 0, 0)

	// The shared bucket "" limits all actions together.
	f.sim.ResetCalls()
	f.sim.SetThrottle("", 0.001, 2)
	one := iam.NewFromConfig(awsConfig(proxyKey, proxySecret, ""), func(o *iam.Options) {
		o.BaseEndpoint = aws.String(f.url)
		o.Retryer = fastRetryer(1)()
	})
	_, err1 := one.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	_, err2 := one.ListRoles(ctx, &iam.ListRolesInput{})
	_, err3 := one.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	if err1 != nil || err2 != nil {
		t.Fatalf("within burst: %v %v", err1, err2)
	}
	wantCode(t, err3, "Throttling")
}

func TestLatency(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	f.sim.SetLatency("", 30*time.Millisecond)
	f.sim.SetLatency("ListRoles", 120*time.Millisecond)
	start := time.Now()
	if _, err := c.ListRoles(ctx, &iam.ListRolesInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Fatalf("ListRoles took %v, want >= 120ms", d)
	}
	start = time.Now()
	if _, err := c.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("GetAccountSummary took %v, want the default 30ms", d)
	}
	// A client that gives up does not keep a handler sleeping forever.
	f.sim.SetLatency("GetAccountSummary", time.Minute)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetAccountSummary(cctx, &iam.GetAccountSummaryInput{}); err == nil {
		t.Fatal("want a deadline error")
	}
}

func TestPropagationDelay(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	is := NewTestIssuer(t, jose.ES256)
	host := stripScheme(is.URL)
	must[string](t)(f.sim.AddOIDCProvider(proxyAcct, is.URL, []string{audience}))
	f.sim.SetPropagationDelay(10 * time.Second)
	trust := func(sub string) string {
		return webTrust(host, `{"StringEquals":{"`+host+`:sub":"`+sub+`"}}`)
	}
	arn := must[string](t)(f.sim.CreateRole(proxyAcct, "r", "", trust("a")))
	tokA := must[string](t)(is.Mint("a", []string{audience}, time.Hour))
	tokB := must[string](t)(is.Mint("b", []string{audience}, time.Hour))

	// Brand-new role: not visible to STS yet.
	_, err := callWebIdentity(ctx, f, arn, tokA)
	wantCode(t, err, "AccessDenied")
	f.clock.Advance(11 * time.Second)
	if _, err := callWebIdentity(ctx, f, arn, tokA); err != nil {
		t.Fatalf("after propagation: %v", err)
	}
	// Switch the trusted subject: STS keeps the old document for the delay.
	if err := f.sim.UpdateAssumeRolePolicy(proxyAcct, "r", trust("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := callWebIdentity(ctx, f, arn, tokA); err != nil {
		t.Fatalf("old policy still in effect: %v", err)
	}
	_, err = callWebIdentity(ctx, f, arn, tokB)
	wantCode(t, err, "AccessDenied")
	f.clock.Advance(11 * time.Second)
	_, err = callWebIdentity(ctx, f, arn, tokA)
	wantCode(t, err, "AccessDenied")
	if _, err := callWebIdentity(ctx, f, arn, tokB); err != nil {
		t.Fatalf("new policy after propagation: %v", err)
	}
	// IAM itself is read-your-writes.
	if tp, _ := f.sim.TrustPolicy(proxyAcct, "r"); tp != trust("b") {
		t.Fatal("IAM must show the latest document")
	}
}

func TestSnapshotAndCounters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	must[string](t)(f.sim.CreateRole(proxyAcct, "b-role", "/x/", trustAnyAWS))
	must[string](t)(f.sim.CreateRole(proxyAcct, "a-role", "", trustAnyAWS))
	if err := f.sim.PutRolePolicy(proxyAcct, "a-role", "p", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`); err != nil {
		t.Fatal(err)
	}
	f.sim.SetQuota(assetAcct, 4096)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("a-role")})
		}()
	}
	wg.Wait()
	snap := f.sim.Snapshot()
	if snap.Calls["GetRole"] != 20 || len(snap.Accounts) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	pa := snap.Accounts[1]
	if pa.ID != proxyAcct || pa.Quota != 2048 || snap.Accounts[0].Quota != 4096 {
		t.Fatalf("accounts %+v", snap.Accounts)
	}
	if len(pa.Roles) != 2 || pa.Roles[0].Name != "a-role" || pa.Roles[1].ARN != "arn:aws:iam::946429944765:role/x/b-role" ||
		pa.Roles[0].TrustPolicy != trustAnyAWS || pa.Roles[0].TrustSize != PolicySize(trustAnyAWS) || len(pa.Roles[0].InlinePolicies) != 1 {
		t.Fatalf("roles %+v", pa.Roles)
	}
	b, _ := json.Marshal(snap)
	if strings.Contains(string(b), proxySecret) {
		t.Fatal("snapshot leaks a secret")
	}
	f.sim.ResetCalls()
	if len(f.sim.Calls()) != 0 {
		t.Fatal("ResetCalls")
	}
}

func TestSetQuotaZeroMeansDefault(t *testing.T) {
	s := New(Options{})
	s.SetQuota(proxyAcct, 4096)
	s.SetQuota(proxyAcct, 0)
	if q := s.Snapshot().Accounts[0].Quota; q != DefaultQuota {
		t.Fatalf("quota %d", q)
	}
}
