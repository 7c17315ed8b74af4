package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/go-jose/go-jose/v4"

	"github.com/irsa-broker/irsa-broker/internal/awssim"
	"github.com/irsa-broker/irsa-broker/internal/awssim/awssimtest"
	"github.com/irsa-broker/irsa-broker/sidecar/awsprofile"
	"github.com/irsa-broker/irsa-broker/sidecar/backoff"
)

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

const acct = "946429944765"

// simWithRole starts the simulator with an OIDC provider and a role whose trust
// policy admits sub; it returns the simulator, its URL, the role ARN and a token for sub.
func simWithRole(t *testing.T, trustedSub, tokenSub string, delay time.Duration) (*awssim.Server, string, string, string) {
	t.Helper()
	sim, url := awssimtest.StartTest(t, awssim.Options{AllowHTTPIssuers: true})
	is := awssimtest.NewTestIssuer(t, jose.RS256)
	sim.AddAccount(acct, 0)
	provARN, err := sim.AddOIDCProvider(acct, is.URL, []string{"sts.amazonaws.com"})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(is.URL, "http://")
	sim.SetPropagationDelay(delay)
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:sub":%q,"%s:aud":"sts.amazonaws.com"}}}]}`,
		provARN, host, trustedSub, host)
	arn, err := sim.CreateRole(acct, "proxy", "/", trust)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := is.Mint(tokenSub, []string{"sts.amazonaws.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return sim, url, arn, tok
}

func fastRetry() backoff.Policy {
	return backoff.Policy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2, Jitter: 0.2}
}

func TestVerifyAgainstSimulator(t *testing.T) {
	const sub = "system:serviceaccount:domino-compute:run-r1"
	t.Run("immediate success", func(t *testing.T) {
		_, url, arn, tok := simWithRole(t, sub, sub, 0)
		v, err := New(Options{STS: NewSTS(STSOptions{Endpoint: url}), Token: staticToken(tok), Retry: fastRetry()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs := v.Verify(ctx, []awsprofile.Source{{Profile: "src_proxy", RoleARN: arn}})
		if len(rs) != 1 || !rs[0].OK || rs[0].Attempts != 1 || rs[0].VerifiedAt.IsZero() || !AllOK(rs) {
			t.Fatalf("results = %+v", rs)
		}
	})
	t.Run("propagation delay", func(t *testing.T) {
		const delay = 700 * time.Millisecond
		sim, url, arn, tok := simWithRole(t, sub, sub, delay)
		v, _ := New(Options{STS: NewSTS(STSOptions{Endpoint: url}), Token: staticToken(tok), Retry: fastRetry()})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		rs := v.Verify(ctx, []awsprofile.Source{{Profile: "src_proxy", RoleARN: arn}})
		if !AllOK(rs) {
			t.Fatalf("results = %+v", rs)
		}
		if rs[0].Attempts < 2 {
			t.Errorf("attempts = %d: the simulator's delay was not retried through", rs[0].Attempts)
		}
		if el := time.Since(start); el < delay-100*time.Millisecond {
			t.Errorf("verified after %v, before the propagation delay %v", el, delay)
		}
		if n := sim.Calls()["AssumeRoleWithWebIdentity"]; n != rs[0].Attempts {
			t.Errorf("simulator saw %d calls, result says %d attempts", n, rs[0].Attempts)
		}
	})
	t.Run("deadline with AWS message", func(t *testing.T) {
		_, url, arn, tok := simWithRole(t, "system:serviceaccount:domino-compute:run-other", sub, 0)
		v, _ := New(Options{STS: NewSTS(STSOptions{Endpoint: url}), Token: staticToken(tok), Retry: fastRetry()})
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		rs := v.Verify(ctx, []awsprofile.Source{{Profile: "src_proxy", RoleARN: arn}})
		if rs[0].OK || rs[0].Code != "AccessDenied" || !strings.Contains(rs[0].Message, "AssumeRoleWithWebIdentity") || rs[0].Attempts < 2 {
			t.Fatalf("result = %+v, want AccessDenied with AWS's message after retries", rs[0])
		}
	})
	t.Run("malformed role is not retried", func(t *testing.T) {
		_, url, _, tok := simWithRole(t, sub, sub, 0)
		v, _ := New(Options{STS: NewSTS(STSOptions{Endpoint: url}), Token: staticToken(tok), Retry: fastRetry()})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs := v.Verify(ctx, []awsprofile.Source{{Profile: "src_x", RoleARN: "arn:aws:iam::12:role/x"}})
		if rs[0].OK || rs[0].Code != "ValidationError" || rs[0].Attempts != 1 {
			t.Fatalf("result = %+v", rs[0])
		}
	})
}

// fakeSTS fails the first n calls per role with code, then succeeds.
type fakeSTS struct {
	failures int32
	code     string
	calls    atomic.Int32
	lastTok  atomic.Value
}

func (f *fakeSTS) AssumeRoleWithWebIdentity(_ context.Context, in *sts.AssumeRoleWithWebIdentityInput, _ ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	n := f.calls.Add(1)
	f.lastTok.Store(*in.WebIdentityToken)
	if n <= f.failures {
		return nil, &smithy.GenericAPIError{Code: f.code, Message: "simulated " + f.code}
	}
	return &sts.AssumeRoleWithWebIdentityOutput{}, nil
}

type rotatingToken struct{ n atomic.Int32 }

func (r *rotatingToken) Token(context.Context) (string, error) {
	return fmt.Sprintf("tok-%d", r.n.Add(1)), nil
}

// TestVerifyFakeClock: the waits between attempts come from the policy and the
// token is re-read on each attempt.
func TestVerifyFakeClock(t *testing.T) {
	clock := backoff.NewFakeClock(time.Unix(0, 0))
	f := &fakeSTS{failures: 3, code: "InvalidIdentityToken"}
	tok := &rotatingToken{}
	v, _ := New(Options{STS: f, Token: tok, Clock: clock,
		Retry: backoff.Policy{Initial: time.Second, Max: 3 * time.Second, Multiplier: 2, Jitter: 0.5, Rand: func() float64 { return 1 }}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []Result, 1)
	go func() {
		done <- v.Verify(ctx, []awsprofile.Source{{Profile: "src_a", RoleARN: "arn:aws:iam::1:role/a"}})
	}()
	for i := 1; i <= 3; i++ {
		if err := clock.WaitForWaits(ctx, i); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
	}
	rs := <-done
	if !rs[0].OK || rs[0].Attempts != 4 || rs[0].Seconds != 30 {
		t.Fatalf("result = %+v", rs[0])
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	if got := clock.Waits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if got := f.lastTok.Load(); got != "tok-4" {
		t.Errorf("last token = %v, want tok-4 (re-read per attempt)", got)
	}
}

func TestVerifyTokenError(t *testing.T) {
	v, _ := New(Options{STS: &fakeSTS{}, Token: errToken{}, Retry: fastRetry()})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rs := v.Verify(ctx, []awsprofile.Source{{Profile: "src_a", RoleARN: "arn"}})
	if rs[0].OK || !strings.Contains(rs[0].Message, "no token file") {
		t.Fatalf("result = %+v", rs[0])
	}
}

type errToken struct{}

func (errToken) Token(context.Context) (string, error) { return "", errors.New("no token file") }

func TestNewRequires(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without STS accepted")
	}
	if rs := (&Verifier{}).Verify(context.Background(), nil); len(rs) != 0 || !AllOK(rs) {
		t.Errorf("no sources: %+v", rs)
	}
}
