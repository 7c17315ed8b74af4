package awssim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-jose/go-jose/v4"
)

// TestSDKCredentialChain drives the SDK's own credential chain through a shared config
// file exactly as the broker renders it (DESIGN.md): web identity into the proxy role,
// then source_profile → AssumeRole into the asset role in another account. The failure
// cases are the three of the existing service's debugging guide.
func TestSDKCredentialChain(t *testing.T) {
	const (
		profile  = "acme-list-bucket-role"
		subject  = "system:serviceaccount:domino-compute:run-65f1c0ffee"
		proxyARN = "arn:aws:iam::946429944765:role/acme-list-bucket-role"
		assetARN = "arn:aws:iam::524112250363:role/acme-list-bucket-role"
	)
	type setup struct {
		f    *fixture
		host string
	}
	proxyTrust := func(host, sub string) string {
		return webTrust(host, `{"StringEquals":{"`+host+`:aud":"sts.amazonaws.com"},"StringLike":{"`+host+`:sub":["`+sub+`"]}}`)
	}
	const assumeAsset = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::524112250363:role/acme-list-bucket-role"}]}`
	const assetTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::946429944765:root"},"Action":"sts:AssumeRole"}]}`

	tests := []struct {
		name    string
		mutate  func(t *testing.T, s setup)
		wantErr string // substring of the credential error; "" = success
	}{
		{name: "chain works"},
		{name: "subject missing from proxy trust policy", mutate: func(t *testing.T, s setup) {
			if err := s.f.sim.UpdateAssumeRolePolicy(proxyAcct, profile, proxyTrust(s.host, "system:serviceaccount:domino-compute:run-other")); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{name: "proxy lacks sts:AssumeRole", mutate: func(t *testing.T, s setup) {
			if err := s.f.sim.PutRolePolicy(proxyAcct, profile, "assume-asset", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "is not authorized to perform: sts:AssumeRole on resource: " + assetARN},
		{name: "asset role does not trust the proxy account", mutate: func(t *testing.T, s setup) {
			if err := s.f.sim.UpdateAssumeRolePolicy(assetAcct, profile, strings.ReplaceAll(assetTrust, proxyAcct, "111122223333")); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "is not authorized to perform: sts:AssumeRole on resource: " + assetARN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f := newFixture(t)
			is := NewTestIssuer(t, jose.RS256)
			host := stripScheme(is.URL)
			must[string](t)(f.sim.AddOIDCProvider(proxyAcct, is.URL, []string{audience}))
			must[string](t)(f.sim.CreateRole(proxyAcct, profile, "", proxyTrust(host, subject)))
			if err := f.sim.PutRolePolicy(proxyAcct, profile, "assume-asset", assumeAsset); err != nil {
				t.Fatal(err)
			}
			must[string](t)(f.sim.CreateRole(assetAcct, profile, "", assetTrust))
			if tc.mutate != nil {
				tc.mutate(t, setup{f: f, host: host})
			}

			dir := t.TempDir()
			tokenFile := filepath.Join(dir, "token")
			if err := os.WriteFile(tokenFile, []byte(must[string](t)(is.Mint(subject, []string{audience}, time.Hour))), 0o600); err != nil {
				t.Fatal(err)
			}
			cfgFile := filepath.Join(dir, "config")
			rendered := "[profile " + profile + "]\n" +
				"source_profile = src_" + profile + "\n" +
				"role_arn=" + assetARN + "\n" +
				"[profile src_" + profile + "]\n" +
				"web_identity_token_file = " + tokenFile + "\n" +
				"role_arn=" + proxyARN + "\n"
			if err := os.WriteFile(cfgFile, []byte(rendered), 0o600); err != nil {
				t.Fatal(err)
			}
			isolateAWSEnv(t)
			t.Setenv("AWS_CONFIG_FILE", cfgFile)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-credentials"))
			t.Setenv("AWS_ENDPOINT_URL_STS", f.url)
			t.Setenv("AWS_REGION", "us-west-2")

			cfg, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigProfile(profile), config.WithRetryer(fastRetryer(3)))
			if err != nil {
				t.Fatal(err)
			}
			who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("want error containing %q, got identity %s", tc.wantErr, aws.ToString(who.Arn))
				}
				wantCode(t, err, "AccessDenied")
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if arn := aws.ToString(who.Arn); !strings.HasPrefix(arn, "arn:aws:sts::524112250363:assumed-role/acme-list-bucket-role/") {
				t.Fatalf("caller %s is not the asset role", arn)
			}
			calls := f.sim.Calls()
			if calls["AssumeRoleWithWebIdentity"] != 1 || calls["AssumeRole"] != 1 || calls["GetCallerIdentity"] != 1 {
				t.Fatalf("calls %v", calls)
			}
		})
	}
}

// isolateAWSEnv removes AWS settings of the machine running the tests.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestEndpointEnvironment: the SDK reaches the simulator through AWS_ENDPOINT_URL_IAM and
// AWS_ENDPOINT_URL_STS alone, with credentials from the environment.
func TestEndpointEnvironment(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	must[string](t)(f.sim.CreateRole(proxyAcct, "r", "", trustAnyAWS))
	isolateAWSEnv(t)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", proxyKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", proxySecret)
	t.Setenv("AWS_REGION", "eu-central-1")
	t.Setenv("AWS_ENDPOINT_URL_IAM", f.url)
	t.Setenv("AWS_ENDPOINT_URL_STS", f.url)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")}); err != nil {
		t.Fatal(err)
	}
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Account) != proxyAcct {
		t.Fatalf("%v %v", who, err)
	}
}
