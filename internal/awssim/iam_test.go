package awssim

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

const trustAnyAWS = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::946429944765:root"},"Action":"sts:AssumeRole"}]}`

func TestIAMRoleLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)

	doc := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"*\"}, \"Action\": \"sts:AssumeRole\"}]\n}"
	created, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("proxy-role"), Path: aws.String("/team/"),
		AssumeRolePolicyDocument: aws.String(doc), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(created.Role.Arn), "arn:aws:iam::946429944765:role/team/proxy-role"; got != want {
		t.Fatalf("arn %s, want %s", got, want)
	}
	if !strings.HasPrefix(aws.ToString(created.Role.RoleId), "AROA") {
		t.Fatalf("role id %s", aws.ToString(created.Role.RoleId))
	}

	// GetRole returns the document URL-encoded, as AWS does; decoding gives it back verbatim.
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("proxy-role")})
	if err != nil {
		t.Fatal(err)
	}
	raw := aws.ToString(got.Role.AssumeRolePolicyDocument)
	if !strings.HasPrefix(raw, "%7B%0A%20%20%22Version%22%3A%20%222012-10-17%22") {
		t.Fatalf("document not URL-encoded like IAM: %.60s", raw)
	}
	if dec, err := url.QueryUnescape(raw); err != nil || dec != doc {
		t.Fatalf("decoded %q (%v), want %q", dec, err, doc)
	}
	if aws.ToInt32(got.Role.MaxSessionDuration) != 3600 || aws.ToString(got.Role.Path) != "/team/" {
		t.Fatalf("role fields: %+v", got.Role)
	}
	// Role names are case-insensitive in IAM.
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("PROXY-ROLE")}); err != nil {
		t.Fatalf("case-insensitive get: %v", err)
	}

	// Duplicate.
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Proxy-Role"), AssumeRolePolicyDocument: aws.String(doc)})
	var exists *types.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("want EntityAlreadyExistsException, got %v", err)
	}

	// Update trust policy.
	if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("proxy-role"), PolicyDocument: aws.String(trustAnyAWS)}); err != nil {
		t.Fatal(err)
	}
	if tp, _ := f.sim.TrustPolicy(proxyAcct, "proxy-role"); tp != trustAnyAWS {
		t.Fatalf("trust after update: %s", tp)
	}

	// Inline policies.
	perm := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::524112250363:role/*"}}`
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("proxy-role"), PolicyName: aws.String("assume"), PolicyDocument: aws.String(perm)}); err != nil {
		t.Fatal(err)
	}
	gp, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("proxy-role"), PolicyName: aws.String("assume")})
	if err != nil {
		t.Fatal(err)
	}
	if dec, _ := url.QueryUnescape(aws.ToString(gp.PolicyDocument)); dec != perm {
		t.Fatalf("policy document %q", dec)
	}
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("proxy-role"), PolicyName: aws.String("nope")})
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("want NoSuchEntity, got %v", err)
	}
	// A role with inline policies cannot be deleted.
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("proxy-role")})
	var conflict *types.DeleteConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("want DeleteConflict, got %v", err)
	}
	if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("proxy-role"), PolicyName: aws.String("assume")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("proxy-role")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("proxy-role")})
	if !errors.As(err, &nse) || !strings.Contains(nse.ErrorMessage(), "proxy-role") {
		t.Fatalf("want NoSuchEntity naming the role, got %v", err)
	}

	// Accounts are separate: the asset account's key does not see the proxy account's roles.
	if _, err := f.iam(proxyKey, proxySecret).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("only-in-proxy"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)}); err != nil {
		t.Fatal(err)
	}
	_, err = f.iam(assetKey, assetSecret).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("only-in-proxy")})
	if !errors.As(err, &nse) {
		t.Fatalf("other account: want NoSuchEntity, got %v", err)
	}
}

func TestIAMErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	if _, err := f.sim.CreateRole(proxyAcct, "r", "", trustAnyAWS); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want any // pointer to the typed SDK error
		code string
	}{
		{"invalid json", func() error {
			_, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"), PolicyDocument: aws.String(`{"Statement":[`)})
			return err
		}, new(*types.MalformedPolicyDocumentException), "MalformedPolicyDocument"},
		{"trust without principal", func() error {
			_, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"),
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`)})
			return err
		}, new(*types.MalformedPolicyDocumentException), "MalformedPolicyDocument"},
		{"bad effect", func() error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("x"),
				AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"sts:AssumeRole"}]}`)})
			return err
		}, new(*types.MalformedPolicyDocumentException), "MalformedPolicyDocument"},
		{"permission policy with principal", func() error {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("p"),
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`)})
			return err
		}, new(*types.MalformedPolicyDocumentException), "MalformedPolicyDocument"},
		{"update unknown role", func() error {
			_, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("ghost"), PolicyDocument: aws.String(trustAnyAWS)})
			return err
		}, new(*types.NoSuchEntityException), "NoSuchEntity"},
		{"put policy unknown role", func() error {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ghost"), PolicyName: aws.String("p"),
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)})
			return err
		}, new(*types.NoSuchEntityException), "NoSuchEntity"},
		{"delete unknown role", func() error {
			_, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("ghost")})
			return err
		}, new(*types.NoSuchEntityException), "NoSuchEntity"},
		{"bad role name", func() error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bad name!"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)})
			return err
		}, nil, "ValidationError"},
		{"unknown oidc provider", func() error {
			_, err := c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::946429944765:oidc-provider/nope")})
			return err
		}, new(*types.NoSuchEntityException), "NoSuchEntity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantCode(t, err, tc.code)
			if tc.want != nil && !errors.As(err, tc.want) {
				t.Fatalf("error %T is not %T", err, tc.want)
			}
		})
	}
}

// trustWithSubjects builds a trust policy whose size grows with n subjects.
func trustWithSubjects(n int, indent bool) string {
	subs := make([]string, n)
	for i := range subs {
		subs[i] = fmt.Sprintf(`"system:serviceaccount:domino-compute:run-%06d"`, i)
	}
	sep, nl := ",", ""
	if indent {
		sep, nl = ",\n        ", "\n    "
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::946429944765:oidc-provider/oidc.example.com/id/X"},` + nl +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"oidc.example.com/id/X:sub":[` + strings.Join(subs, sep) + `]}}}]}`
}

func TestIAMSizeQuota(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	if _, err := f.sim.CreateRole(proxyAcct, "r", "", trustAnyAWS); err != nil {
		t.Fatal(err)
	}
	// Find the largest compact document that fits 2048, then pad it with whitespace.
	n := 0
	for PolicySize(trustWithSubjects(n+1, false)) <= DefaultQuota {
		n++
	}
	fits := trustWithSubjects(n, true)
	if len(fits) <= DefaultQuota || PolicySize(fits) > DefaultQuota {
		t.Fatalf("test setup: len %d size %d", len(fits), PolicySize(fits))
	}
	if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"), PolicyDocument: aws.String(fits)}); err != nil {
		t.Fatalf("whitespace must not count: %v", err)
	}
	over := trustWithSubjects(n+1, false)
	_, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"), PolicyDocument: aws.String(over)})
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("want LimitExceeded, got %v", err)
	}
	if !strings.Contains(le.ErrorMessage(), "ACLSizePerRole: 2048") {
		t.Fatalf("message %q", le.ErrorMessage())
	}
	// The failed write changed nothing.
	if tp, _ := f.sim.TrustPolicy(proxyAcct, "r"); tp != fits {
		t.Fatal("failed update modified the trust policy")
	}
	// GetAccountSummary reports the quota; raising it lets the document in.
	sum, err := c.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	if err != nil {
		t.Fatal(err)
	}
	if q := sum.SummaryMap[string(types.SummaryKeyTypeAssumeRolePolicySizeQuota)]; q != 2048 {
		t.Fatalf("AssumeRolePolicySizeQuota %d", q)
	}
	if r := sum.SummaryMap["Roles"]; r != 1 {
		t.Fatalf("Roles %d", r)
	}
	f.sim.SetQuota(proxyAcct, 4096)
	if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"), PolicyDocument: aws.String(over)}); err != nil {
		t.Fatalf("after quota increase: %v", err)
	}
	sum, _ = c.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	if q := sum.SummaryMap["AssumeRolePolicySizeQuota"]; q != 4096 {
		t.Fatalf("AssumeRolePolicySizeQuota after increase %d", q)
	}
}

func TestIAMListRolesPaging(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	var want []string
	for i := 0; i < 23; i++ {
		path := "/"
		if i%2 == 0 {
			path = "/irsa/"
		}
		name := fmt.Sprintf("role-%02d", i)
		if _, err := f.sim.CreateRole(proxyAcct, name, path, trustAnyAWS); err != nil {
			t.Fatal(err)
		}
		if path == "/irsa/" {
			want = append(want, name)
		}
	}
	var got []string
	pages := 0
	p := iam.NewListRolesPaginator(c, &iam.ListRolesInput{PathPrefix: aws.String("/irsa/"), MaxItems: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Roles) > 5 {
			t.Fatalf("page of %d > MaxItems", len(out.Roles))
		}
		for _, r := range out.Roles {
			got = append(got, aws.ToString(r.RoleName))
			if _, err := url.QueryUnescape(aws.ToString(r.AssumeRolePolicyDocument)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("got %v in %d pages, want %v in 3", got, pages, want)
	}
	all, err := c.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil || len(all.Roles) != 23 || all.IsTruncated {
		t.Fatalf("unpaged list: %d roles, truncated %v, %v", len(all.Roles), all.IsTruncated, err)
	}
	_, err = c.ListRoles(ctx, &iam.ListRolesInput{Marker: aws.String("!!not-a-marker")})
	wantCode(t, err, "InvalidInput")
}

func TestIAMOIDCProvider(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	out, err := c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://oidc.eks.us-west-2.amazonaws.com/id/ABC"), ClientIDList: []string{"sts.amazonaws.com", "other"},
		ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.OpenIDConnectProviderArn)
	if arn != "arn:aws:iam::946429944765:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC" {
		t.Fatalf("arn %s", arn)
	}
	got, err := c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Url) != "oidc.eks.us-west-2.amazonaws.com/id/ABC" || strings.Join(got.ClientIDList, ",") != "sts.amazonaws.com,other" || len(got.ThumbprintList) != 1 {
		t.Fatalf("provider %+v", got)
	}
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://oidc.eks.us-west-2.amazonaws.com/id/ABC"), ClientIDList: []string{"x"}})
	var exists *types.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("duplicate provider: %v", err)
	}
	// Plain HTTP issuers only when allowed.
	strict, strictURL := StartTest(t, Options{})
	if err := strict.AddAccessKey(proxyAcct, proxyKey, proxySecret); err != nil {
		t.Fatal(err)
	}
	sc := iam.NewFromConfig(awsConfig(proxyKey, proxySecret, ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(strictURL) })
	_, err = sc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("http://127.0.0.1:1/x"), ClientIDList: []string{"x"}})
	wantCode(t, err, "InvalidInput")
}

func TestIAMDeniedAction(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const key, secret = "AKIABROKEREXAMPLE001", "broker-secret"
	if err := f.sim.AddUserAccessKey(proxyAcct, "broker", key, secret, "iam:UpdateAssumeRolePolicy"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sim.CreateRole(proxyAcct, "proxy", "", trustAnyAWS); err != nil {
		t.Fatal(err)
	}
	c := f.iam(key, secret)
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("proxy")}); err != nil {
		t.Fatalf("GetRole is allowed: %v", err)
	}
	_, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("proxy"), PolicyDocument: aws.String(trustAnyAWS)})
	wantCode(t, err, "AccessDenied")
	want := "User: arn:aws:iam::946429944765:user/broker is not authorized to perform: iam:UpdateAssumeRolePolicy on resource: role proxy"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("message: %v", err)
	}
}

// TestIAMTemporaryCredentials: IAM calls made with STS credentials are authorized by the
// role's permission policies.
func TestIAMTemporaryCredentials(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.sim.CreateRole(proxyAcct, "broker", "", trustAnyAWS); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.PutRolePolicy(proxyAcct, "broker", "iam", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:GetRole","iam:UpdateAssumeRolePolicy"],"Resource":"arn:aws:iam::946429944765:role/*"},
		{"Effect":"Deny","Action":"iam:*","Resource":"arn:aws:iam::946429944765:role/protected"}]}`); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"target", "protected"} {
		if _, err := f.sim.CreateRole(proxyAcct, n, "", trustAnyAWS); err != nil {
			t.Fatal(err)
		}
	}
	creds := must[*stsAssumeOut](t)(assumeAs(ctx, f, awsConfig(proxyKey, proxySecret, ""), "arn:aws:iam::946429944765:role/broker", 0))
	c := iam.NewFromConfig(awsConfig(creds.key, creds.secret, creds.token), func(o *iam.Options) { o.BaseEndpoint = aws.String(f.url) })
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("target")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("protected")})
	wantCode(t, err, "AccessDenied")
	_, err = c.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	wantCode(t, err, "AccessDenied")
	// Without the session token the temporary key is unknown.
	bad := iam.NewFromConfig(awsConfig(creds.key, creds.secret, ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(f.url) })
	_, err = bad.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("target")})
	wantCode(t, err, "InvalidClientTokenId")
}
