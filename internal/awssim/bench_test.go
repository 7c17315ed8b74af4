package awssim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/go-jose/go-jose/v4"
)

// BenchmarkGetRole measures a signed GetRole round trip through the real SDK.
func BenchmarkGetRole(b *testing.B) {
	sim, u := StartTest(b, Options{})
	if err := sim.AddAccessKey(proxyAcct, proxyKey, proxySecret); err != nil {
		b.Fatal(err)
	}
	if _, err := sim.CreateRole(proxyAcct, "r", "", trustWithSubjects(20, false)); err != nil {
		b.Fatal(err)
	}
	c := iam.NewFromConfig(awsConfig(proxyKey, proxySecret, ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(u) })
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkAssumeRoleWithWebIdentity measures JWT verification (cached JWKS) plus trust
// evaluation against a trust policy with many subjects.
func BenchmarkAssumeRoleWithWebIdentity(b *testing.B) {
	sim := New(Options{AllowHTTPIssuers: true})
	is := NewTestIssuer(b, jose.ES256)
	host := stripScheme(is.URL)
	if _, err := sim.AddOIDCProvider(proxyAcct, is.URL, []string{audience}); err != nil {
		b.Fatal(err)
	}
	subs := `""`
	for i := 0; i < 40; i++ {
		subs += fmt.Sprintf(`,"system:serviceaccount:domino-compute:run-%d"`, i)
	}
	sim.SetQuota(proxyAcct, 8192)
	arn, err := sim.CreateRole(proxyAcct, "r", "", webTrust(host, `{"StringLike":{"`+host+`:sub":[`+subs+`]}}`))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := is.Mint("system:serviceaccount:domino-compute:run-39", []string{audience}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	form := map[string][]string{"RoleArn": {arn}, "RoleSessionName": {"s1"}, "WebIdentityToken": {tok}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, aerr := sim.assumeRoleWithWebIdentity(ctx, form); aerr != nil {
			b.Fatal(aerr)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "assumes/s")
}
