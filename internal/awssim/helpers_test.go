package awssim

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Accounts from DESIGN.md's example: the proxy account (cluster) and the asset account.
const (
	proxyAcct   = "946429944765"
	assetAcct   = "524112250363"
	proxyKey    = "AKIAPROXYEXAMPLE0001"
	proxySecret = "proxy/secret/EXAMPLEKEY0000000000000001"
	assetKey    = "AKIAASSETEXAMPLE0001"
	assetSecret = "asset/secret/EXAMPLEKEY0000000000000001"
)

type fixture struct {
	sim   *Server
	url   string
	clock *testClock
}

// testClock is the simulator's clock: real time plus an adjustable offset.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := &testClock{}
	sim, url := StartTest(t, Options{AllowHTTPIssuers: true, Now: clock.Now})
	sim.AddAccount(proxyAcct, 0)
	sim.AddAccount(assetAcct, 0)
	if err := sim.AddAccessKey(proxyAcct, proxyKey, proxySecret); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddAccessKey(assetAcct, assetKey, assetSecret); err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, url: url, clock: clock}
}

// fastRetryer retries like the standard retryer but with a tiny backoff so tests stay fast.
func fastRetryer(attempts int) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			o.RateLimiter = noRateLimit{}
		})
	}
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

func awsConfig(key, secret, token string) aws.Config {
	return aws.Config{
		Region:      "us-west-2",
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, token),
		Retryer:     fastRetryer(3),
	}
}

func (f *fixture) iam(key, secret string) *iam.Client {
	return iam.NewFromConfig(awsConfig(key, secret, ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(f.url) })
}

func (f *fixture) sts(cfg aws.Config) *sts.Client {
	return sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.url) })
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	if got := apiCode(err); got != code {
		t.Fatalf("want error code %s, got %q (%v)", code, got, err)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
