package awssim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/go-jose/go-jose/v4"
)

const audience = "sts.amazonaws.com"

type stsAssumeOut struct {
	key, secret, token, arn string
	expires                 time.Time
}

func assumeAs(ctx context.Context, f *fixture, cfg aws.Config, roleARN string, secs int32) (*stsAssumeOut, error) {
	in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("test-session")}
	if secs > 0 {
		in.DurationSeconds = aws.Int32(secs)
	}
	out, err := f.sts(cfg).AssumeRole(ctx, in)
	if err != nil {
		return nil, err
	}
	return &stsAssumeOut{key: aws.ToString(out.Credentials.AccessKeyId), secret: aws.ToString(out.Credentials.SecretAccessKey),
		token: aws.ToString(out.Credentials.SessionToken), arn: aws.ToString(out.AssumedRoleUser.Arn), expires: aws.ToTime(out.Credentials.Expiration)}, nil
}

func callWebIdentity(ctx context.Context, f *fixture, roleARN, token string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	cfg := aws.Config{Region: "us-west-2", Credentials: aws.AnonymousCredentials{}, Retryer: fastRetryer(1)}
	return f.sts(cfg).AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("pod-session"), WebIdentityToken: aws.String(token)})
}

// webTrust is a proxy-role trust policy as the broker writes it, with extra statements.
func webTrust(provider, conditions string, extra ...string) string {
	st := `{"Sid":"irsa","Effect":"Allow","Principal":{"Federated":"arn:aws:iam::946429944765:oidc-provider/` + provider +
		`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + conditions + `}`
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(append([]string{st}, extra...), ",") + `]}`
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rsaIss := NewTestIssuer(t, jose.RS256)
	ecIss := NewTestIssuer(t, jose.ES256)
	unregistered := NewTestIssuer(t, jose.RS256)
	for _, is := range []*TestIssuer{rsaIss, ecIss} {
		if _, err := f.sim.AddOIDCProvider(proxyAcct, is.URL, []string{audience}); err != nil {
			t.Fatal(err)
		}
	}
	rsaHost, ecHost := stripScheme(rsaIss.URL), stripScheme(ecIss.URL)
	mkRole := func(name, trust string) string {
		t.Helper()
		arn, err := f.sim.CreateRole(proxyAcct, name, "", trust)
		if err != nil {
			t.Fatal(err)
		}
		return arn
	}
	exact := mkRole("exact", webTrust(rsaHost, `{"StringLike":{"`+rsaHost+`:sub":["","system:serviceaccount:domino-compute:run-1"],"`+rsaHost+`:aud":"sts.amazonaws.com"}}`))
	wild := mkRole("wild", webTrust(rsaHost, `{"StringLike":{"`+rsaHost+`:sub":"*:domino-compute:run-?"}}`))
	equals := mkRole("equals", webTrust(ecHost, `{"StringEquals":{"`+ecHost+`:sub":"system:serviceaccount:domino-compute:run-1"}}`))
	anyValue := mkRole("anyvalue", webTrust(rsaHost, `{"ForAnyValue:StringEquals":{"`+rsaHost+`:aud":["a","sts.amazonaws.com"]},"StringEquals":{"`+rsaHost+`:sub":"system:serviceaccount:domino-compute:run-1"}}`))
	denied := mkRole("denied", webTrust(rsaHost, `{"StringLike":{"`+rsaHost+`:sub":"*"}}`,
		`{"Effect":"Deny","Principal":{"Federated":"arn:aws:iam::946429944765:oidc-provider/`+rsaHost+`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"`+rsaHost+`:sub":"*:run-666"}}}`))
	wrongAction := mkRole("wrongaction", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::946429944765:oidc-provider/`+rsaHost+`"},"Action":"sts:AssumeRole"}]}`)

	tok := func(is *TestIssuer, sub string, aud ...string) string {
		t.Helper()
		if len(aud) == 0 {
			aud = []string{audience}
		}
		s, err := is.Mint(sub, aud, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const run1 = "system:serviceaccount:domino-compute:run-1"
	expired, _ := rsaIss.MintClaims(TokenClaims{Subject: run1, Audience: []string{audience}, IssuedAt: time.Now().Add(-2 * time.Hour), Expiry: time.Now().Add(-time.Hour)})
	future, _ := rsaIss.MintClaims(TokenClaims{Subject: run1, Audience: []string{audience}, NotBefore: time.Now().Add(time.Hour), IssuedAt: time.Now(), Expiry: time.Now().Add(2 * time.Hour)})
	forged, _ := unregistered.MintClaims(TokenClaims{Subject: run1, Audience: []string{audience}, Issuer: rsaIss.URL})
	good := tok(rsaIss, run1)
	tampered := good[:strings.LastIndexByte(good, '.')+1] + "AAAA" + good[strings.LastIndexByte(good, '.')+5:]

	tests := []struct {
		name, role, token, code string
	}{
		{"rsa exact subject", exact, good, ""},
		{"ecdsa StringEquals", equals, tok(ecIss, run1), ""},
		{"StringLike wildcard * and ?", wild, tok(rsaIss, "system:serviceaccount:domino-compute:run-7"), ""},
		{"StringLike ? needs exactly one char", wild, tok(rsaIss, "system:serviceaccount:domino-compute:run-77"), "AccessDenied"},
		{"ForAnyValue aud", anyValue, tok(rsaIss, run1), ""},
		{"subject not in trust policy", exact, tok(rsaIss, "system:serviceaccount:domino-compute:run-2"), "AccessDenied"},
		{"empty placeholder matches nothing", exact, tok(rsaIss, "x"), "AccessDenied"},
		{"explicit deny wins", denied, tok(rsaIss, "system:serviceaccount:domino-compute:run-666"), "AccessDenied"},
		{"deny does not hit others", denied, tok(rsaIss, run1), ""},
		{"action must be web identity", wrongAction, good, "AccessDenied"},
		{"wrong audience", exact, tok(rsaIss, run1, "someone-else"), "InvalidIdentityToken"},
		{"expired", exact, expired, "ExpiredTokenException"},
		{"not yet valid", exact, future, "InvalidIdentityToken"},
		{"signed by another key", exact, forged, "InvalidIdentityToken"},
		{"tampered signature", exact, tampered, "InvalidIdentityToken"},
		{"garbage", exact, "not-a-jwt-at-all", "InvalidIdentityToken"},
		{"unregistered issuer", exact, tok(unregistered, run1), "InvalidIdentityToken"},
		{"provider in another account", "arn:aws:iam::524112250363:role/exact", good, "InvalidIdentityToken"},
		{"unknown role", "arn:aws:iam::946429944765:role/ghost", good, "AccessDenied"},
		{"malformed role arn", "arn:aws:s3:::bucket", good, "ValidationError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := callWebIdentity(ctx, f, tc.role, tc.token)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				roleName := tc.role[strings.LastIndexByte(tc.role, '/')+1:]
				if got, want := aws.ToString(out.AssumedRoleUser.Arn), "arn:aws:sts::946429944765:assumed-role/"+roleName+"/pod-session"; got != want {
					t.Fatalf("assumed role arn %s, want %s", got, want)
				}
				if !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || aws.ToString(out.Credentials.SessionToken) == "" ||
					time.Until(aws.ToTime(out.Credentials.Expiration)) < 50*time.Minute || aws.ToString(out.Audience) != audience {
					t.Fatalf("credentials %+v", out)
				}
				return
			}
			wantCode(t, err, tc.code)
			if tc.code == "ExpiredTokenException" {
				var et *ststypes.ExpiredTokenException
				if !errors.As(err, &et) {
					t.Fatalf("want typed ExpiredTokenException, got %T", err)
				}
			}
			if tc.code == "InvalidIdentityToken" {
				var it *ststypes.InvalidIdentityTokenException
				if !errors.As(err, &it) {
					t.Fatalf("want typed InvalidIdentityTokenException, got %T", err)
				}
			}
			if strings.Contains(err.Error(), tc.token) && len(tc.token) > 20 {
				t.Fatal("token leaked into the error message")
			}
		})
	}

	// The issued credentials work for signed STS calls.
	out, err := callWebIdentity(ctx, f, exact, good)
	if err != nil {
		t.Fatal(err)
	}
	cfg := awsConfig(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	who, err := f.sts(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(who.Arn) != "arn:aws:sts::946429944765:assumed-role/exact/pod-session" || aws.ToString(who.Account) != proxyAcct ||
		!strings.HasSuffix(aws.ToString(who.UserId), ":pod-session") {
		t.Fatalf("caller identity %+v", who)
	}
}

func TestWebIdentityKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	is := NewTestIssuer(t, jose.RS256)
	if _, err := f.sim.AddOIDCProvider(proxyAcct, is.URL, []string{audience}); err != nil {
		t.Fatal(err)
	}
	host := stripScheme(is.URL)
	arn, err := f.sim.CreateRole(proxyAcct, "r", "", webTrust(host, `{"StringEquals":{"`+host+`:sub":"s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	old := must[string](t)(is.Mint("s", []string{audience}, time.Hour))
	if _, err := callWebIdentity(ctx, f, arn, old); err != nil {
		t.Fatal(err)
	}
	// New key, old one withdrawn: the unknown kid forces a refetch of the JWKS.
	if err := is.Rotate(false); err != nil {
		t.Fatal(err)
	}
	if _, err := callWebIdentity(ctx, f, arn, must[string](t)(is.Mint("s", []string{audience}, time.Hour))); err != nil {
		t.Fatalf("token with rotated key: %v", err)
	}
	_, err = callWebIdentity(ctx, f, arn, old)
	wantCode(t, err, "InvalidIdentityToken")
	// Keeping the old key published keeps old tokens valid.
	if err := is.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if _, err := callWebIdentity(ctx, f, arn, must[string](t)(is.Mint("s", []string{audience}, time.Hour))); err != nil {
		t.Fatal(err)
	}
}

func TestAssumeRole(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := awsConfig(proxyKey, proxySecret, "")

	who, err := f.sts(root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(who.Arn) != "arn:aws:iam::946429944765:root" || aws.ToString(who.Account) != proxyAcct {
		t.Fatalf("root identity %+v", who)
	}

	proxyARN := must[string](t)(f.sim.CreateRole(proxyAcct, "proxy", "", trustAnyAWS))
	assetARN := must[string](t)(f.sim.CreateRole(assetAcct, "asset", "/data/",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"946429944765"},"Action":"sts:AssumeRole"}]}`))
	otherARN := must[string](t)(f.sim.CreateRole(assetAcct, "other",
		"", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}]}`))

	// The account root may assume a role that trusts the account.
	proxy, err := assumeAs(ctx, f, root, proxyARN, 0)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.arn != "arn:aws:sts::946429944765:assumed-role/proxy/test-session" {
		t.Fatalf("arn %s", proxy.arn)
	}
	// A session without sts:AssumeRole permission cannot chain.
	proxyCfg := awsConfig(proxy.key, proxy.secret, proxy.token)
	_, err = assumeAs(ctx, f, proxyCfg, assetARN, 0)
	wantCode(t, err, "AccessDenied")
	if !strings.Contains(err.Error(), "assumed-role/proxy/test-session is not authorized to perform: sts:AssumeRole on resource: "+assetARN) {
		t.Fatalf("message: %v", err)
	}
	if err := f.sim.PutRolePolicy(proxyAcct, "proxy", "assume", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::524112250363:role/*"}]}`); err != nil {
		t.Fatal(err)
	}
	asset, err := assumeAs(ctx, f, proxyCfg, assetARN, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if asset.arn != "arn:aws:sts::524112250363:assumed-role/asset/test-session" || time.Until(asset.expires) > time.Hour+time.Minute {
		t.Fatalf("asset session %+v", asset)
	}
	// Role chaining is capped at one hour.
	_, err = assumeAs(ctx, f, proxyCfg, assetARN, 7200)
	wantCode(t, err, "ValidationError")
	if !strings.Contains(err.Error(), "role chaining") {
		t.Fatalf("message: %v", err)
	}
	// Permission allows it, but the target does not trust the proxy's account.
	_, err = assumeAs(ctx, f, proxyCfg, otherARN, 0)
	wantCode(t, err, "AccessDenied")
	// Wrong session token.
	_, err = assumeAs(ctx, f, awsConfig(proxy.key, proxy.secret, "forged"), assetARN, 0)
	wantCode(t, err, "InvalidClientTokenId")
	// Expired credentials: move the simulator's clock past the session's expiry.
	f.clock.Advance(2 * time.Hour)
	_, err = f.sts(proxyCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken")
}

func TestWebIdentityHTTPSIssuer(t *testing.T) {
	ctx := context.Background()
	is, pool := NewTestIssuerTLS(t, jose.RS256)
	host := stripScheme(is.URL)
	tok := must[string](t)(is.Mint("s", []string{audience}, time.Hour))
	for _, tc := range []struct {
		name string
		cas  bool
		code string
	}{{"trusted CA", true, ""}, {"unknown CA", false, "InvalidIdentityToken"}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{}
			if tc.cas {
				opts.IssuerCAs = pool
			}
			sim, u := StartTest(t, opts)
			must[string](t)(sim.AddOIDCProvider(proxyAcct, is.URL, []string{audience}))
			arn := must[string](t)(sim.CreateRole(proxyAcct, "r", "", webTrust(host, `{"StringEquals":{"`+host+`:sub":"s"}}`)))
			_, err := callWebIdentity(ctx, &fixture{sim: sim, url: u}, arn, tok)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), "Couldn't retrieve verification key") {
				t.Fatalf("message: %v", err)
			}
		})
	}
	// Without AllowHTTPIssuers, http:// providers cannot even be registered.
	if _, err := New(Options{}).AddOIDCProvider(proxyAcct, "http://127.0.0.1:1", []string{audience}); err == nil {
		t.Fatal("http issuer accepted")
	}
}
