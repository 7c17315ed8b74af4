package awssim

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

const (
	assumeAssetPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::524112250363:role/*"}]}`
	boundaryPolicy    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}`
	denyAllBoundary   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
)

// TestIAMRoleWithPoliciesAndTags walks what an elastic pool member goes through:
// created under a path with tags and a required permissions boundary, given inline and
// managed policies, listed, and deleted only once its policies are gone.
func TestIAMRoleWithPoliciesAndTags(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)

	bnd, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("irsa-boundary"), Path: aws.String("/irsa/"),
		PolicyDocument: aws.String(boundaryPolicy), Description: aws.String("pool boundary")})
	if err != nil {
		t.Fatal(err)
	}
	boundaryARN := aws.ToString(bnd.Policy.Arn)
	if boundaryARN != "arn:aws:iam::946429944765:policy/irsa/irsa-boundary" || !strings.HasPrefix(aws.ToString(bnd.Policy.PolicyId), "ANPA") {
		t.Fatalf("policy %+v", bnd.Policy)
	}
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("IRSA-boundary"), PolicyDocument: aws.String(boundaryPolicy)})
	wantCode(t, err, "EntityAlreadyExists")
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("with-principal"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`)})
	wantCode(t, err, "MalformedPolicyDocument")

	// The boundary must exist.
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("member-x"), AssumeRolePolicyDocument: aws.String(trustAnyAWS),
		PermissionsBoundary: aws.String("arn:aws:iam::946429944765:policy/nope")})
	// The SDK does not model NoSuchEntity for CreateRole: the code is what tells.
	wantCode(t, err, "NoSuchEntity")
	if !strings.Contains(err.Error(), "Scope ARN: arn:aws:iam::946429944765:policy/nope does not exist or is not attachable.") {
		t.Fatalf("unknown boundary: %v", err)
	}
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("member-x"), AssumeRolePolicyDocument: aws.String(trustAnyAWS),
		Tags: []types.Tag{{Key: aws.String("pool"), Value: aws.String("a")}, {Key: aws.String("POOL"), Value: aws.String("b")}}})
	wantCode(t, err, "InvalidInput")

	created, err := c.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String("acme-pool-1"), Path: aws.String("/irsa-pool/acme/"), AssumeRolePolicyDocument: aws.String(trustAnyAWS),
		Description: aws.String("member 1 of pool acme"), MaxSessionDuration: aws.Int32(7200), PermissionsBoundary: aws.String(boundaryARN),
		Tags: []types.Tag{{Key: aws.String("irsa-broker/pool"), Value: aws.String("acme")}, {Key: aws.String("managed-by"), Value: aws.String("irsa-broker")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.Role.Arn) != "arn:aws:iam::946429944765:role/irsa-pool/acme/acme-pool-1" || len(created.Role.Tags) != 2 {
		t.Fatalf("created %+v", created.Role)
	}
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("acme-pool-1")})
	if err != nil {
		t.Fatal(err)
	}
	r := got.Role
	if aws.ToInt32(r.MaxSessionDuration) != 7200 || aws.ToString(r.Description) != "member 1 of pool acme" || aws.ToString(r.Path) != "/irsa-pool/acme/" ||
		r.PermissionsBoundary == nil || aws.ToString(r.PermissionsBoundary.PermissionsBoundaryArn) != boundaryARN ||
		r.PermissionsBoundary.PermissionsBoundaryType != types.PermissionsBoundaryAttachmentTypePolicy {
		t.Fatalf("GetRole %+v", r)
	}
	if len(r.Tags) != 2 || aws.ToString(r.Tags[0].Key) != "irsa-broker/pool" || aws.ToString(r.Tags[0].Value) != "acme" {
		t.Fatalf("tags %+v", r.Tags)
	}
	if gp, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(boundaryARN)}); err != nil || aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount) != 1 {
		t.Fatalf("GetPolicy: %+v %v", gp, err)
	}

	// Tags: TagRole replaces by key (case-insensitively) and adds; UntagRole removes; ListRoleTags pages.
	if _, err := c.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String("acme-pool-1"), Tags: []types.Tag{
		{Key: aws.String("Managed-By"), Value: aws.String("someone")}, {Key: aws.String("extra"), Value: aws.String("")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagRole(ctx, &iam.UntagRoleInput{RoleName: aws.String("acme-pool-1"), TagKeys: []string{"EXTRA"}}); err != nil {
		t.Fatal(err)
	}
	var tags []string
	tp := iam.NewListRoleTagsPaginator(c, &iam.ListRoleTagsInput{RoleName: aws.String("acme-pool-1"), MaxItems: aws.Int32(1)})
	for tp.HasMorePages() {
		out, err := tp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range out.Tags {
			tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
	}
	if strings.Join(tags, ",") != "irsa-broker/pool=acme,Managed-By=someone" {
		t.Fatalf("tags %v", tags)
	}
	many := make([]types.Tag, 49)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	_, err = c.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String("acme-pool-1"), Tags: many})
	wantCode(t, err, "LimitExceeded")

	// Inline and managed policies.
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyName: aws.String("assume-asset"),
		PolicyDocument: aws.String(assumeAssetPolicy)}); err != nil {
		t.Fatal(err)
	}
	var arns []string
	for i := range attachedPoliciesPerRole {
		p, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(fmt.Sprintf("perm-%02d", i)), PolicyDocument: aws.String(assumeAssetPolicy)})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(p.Policy.Arn))
		if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: p.Policy.Arn}); err != nil {
			t.Fatal(err)
		}
	}
	// Attaching again is a no-op; an eleventh policy is over IAM's default quota.
	if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: aws.String(arns[0])}); err != nil {
		t.Fatalf("re-attach: %v", err)
	}
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: aws.String(boundaryARN)})
	var le *types.LimitExceededException
	if !errors.As(err, &le) || !strings.Contains(le.ErrorMessage(), "PoliciesPerRole: 10") {
		t.Fatalf("attach quota: %v", err)
	}
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: aws.String("arn:aws:iam::946429944765:policy/ghost")})
	wantCode(t, err, "NoSuchEntity")
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: aws.String("not-an-arn-at-all-xx")})
	wantCode(t, err, "InvalidInput")

	var attached []string
	ap := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("acme-pool-1"), MaxItems: aws.Int32(3)})
	pages := 0
	for ap.HasMorePages() {
		out, err := ap.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range out.AttachedPolicies {
			attached = append(attached, aws.ToString(p.PolicyArn))
		}
	}
	if !slices.Equal(attached, arns) || pages != 4 {
		t.Fatalf("attached %v in %d pages, want %v in 4", attached, pages, arns)
	}
	inl, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("acme-pool-1")})
	if err != nil || !slices.Equal(inl.PolicyNames, []string{"assume-asset"}) || inl.IsTruncated {
		t.Fatalf("ListRolePolicies %+v %v", inl, err)
	}

	// Deletion order is IAM's: inline policies, then managed ones, then the role;
	// a policy in use cannot be deleted.
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("acme-pool-1")})
	var conflict *types.DeleteConflictException
	if !errors.As(err, &conflict) || !strings.Contains(conflict.ErrorMessage(), "must delete policies first") {
		t.Fatalf("delete with inline policy: %v", err)
	}
	if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyName: aws.String("assume-asset")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("acme-pool-1")})
	if !errors.As(err, &conflict) || !strings.Contains(conflict.ErrorMessage(), "must detach all policies first") {
		t.Fatalf("delete with managed policies: %v", err)
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arns[0])})
	wantCode(t, err, "DeleteConflict")
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(boundaryARN)})
	wantCode(t, err, "DeleteConflict")
	for _, arn := range arns {
		if _, err := c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("acme-pool-1"), PolicyArn: aws.String(arns[0])})
	wantCode(t, err, "NoSuchEntity")
	if _, err := c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arns[0])}); err != nil {
		t.Fatalf("detached policy: %v", err)
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("acme-pool-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(boundaryARN)}); err != nil {
		t.Fatalf("boundary of a deleted role: %v", err)
	}
}

// TestIAMRolesQuota: CreateRole fails with LimitExceeded once the account holds
// RolesQuota roles; GetAccountSummary reports both figures.
func TestIAMRolesQuota(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.iam(proxyKey, proxySecret)
	f.sim.SetRolesQuota(proxyAcct, 3)
	for i := range 3 {
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(fmt.Sprintf("r%d", i)), AssumeRolePolicyDocument: aws.String(trustAnyAWS)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r3"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)})
	var le *types.LimitExceededException
	if !errors.As(err, &le) || le.ErrorMessage() != "Cannot exceed quota for RolesPerAccount: 3" {
		t.Fatalf("want LimitExceeded RolesPerAccount, got %v", err)
	}
	// An existing name is still EntityAlreadyExists, as it is checked first.
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r0"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)})
	wantCode(t, err, "EntityAlreadyExists")
	sum, err := c.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.SummaryMap[string(types.SummaryKeyTypeRoles)] != 3 || sum.SummaryMap["RolesQuota"] != 3 {
		t.Fatalf("summary Roles %d RolesQuota %d", sum.SummaryMap["Roles"], sum.SummaryMap["RolesQuota"])
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("r1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r3"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	// The other account keeps IAM's default.
	other := f.iam(assetKey, assetSecret)
	sum, err = other.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	if err != nil || sum.SummaryMap["RolesQuota"] != DefaultRolesQuota {
		t.Fatalf("default RolesQuota %d, %v", sum.SummaryMap["RolesQuota"], err)
	}
}

func TestSeedPoolShapes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	seed, err := ParseSeed([]byte(`
accounts:
  - id: "946429944765"
    rolesQuota: 2
    policies:
      - name: boundary
        path: /irsa/
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "sts:AssumeRole", Resource: "*"}]}
    roles:
      - name: template
        path: /irsa-pool/acme/
        permissionsBoundary: arn:aws:iam::946429944765:policy/irsa/boundary
        managedPolicies: [arn:aws:iam::946429944765:policy/irsa/boundary]
        tags: {pool: acme}
        trustPolicy: '` + trustAnyAWS + `'
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.ApplySeed(seed); err != nil {
		t.Fatal(err)
	}
	c := f.iam(proxyKey, proxySecret)
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("template")})
	if err != nil || got.Role.PermissionsBoundary == nil || len(got.Role.Tags) != 1 {
		t.Fatalf("seeded role %+v, %v", got, err)
	}
	ap, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("template"), PathPrefix: aws.String("/irsa/")})
	if err != nil || len(ap.AttachedPolicies) != 1 {
		t.Fatalf("attached %+v, %v", ap, err)
	}
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("second"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("third"), AssumeRolePolicyDocument: aws.String(trustAnyAWS)})
	wantCode(t, err, "LimitExceeded")
	snap := f.sim.Snapshot()
	if snap.Accounts[1].RolesQuota != 2 || len(snap.Accounts[1].Policies) != 1 || snap.Accounts[1].Roles[1].Tags["pool"] != "acme" {
		t.Fatalf("snapshot %+v", snap.Accounts[1])
	}
}

// TestAssumeRolePrincipalArnConditions: an asset role trusts a pool of proxy roles by
// path (aws:PrincipalArn ArnLike), without listing them; roles outside the path, and a
// pool member whose permissions boundary does not allow sts:AssumeRole, are refused.
func TestAssumeRolePrincipalArnConditions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	proxy := f.iam(proxyKey, proxySecret)
	trust := func(op, pattern string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::946429944765:root"},"Action":"sts:AssumeRole",` +
			`"Condition":{"` + op + `":{"aws:PrincipalArn":"` + pattern + `"}}}]}`
	}
	assets := map[string]string{
		"by-arnlike":    trust("ArnLike", "arn:aws:iam::946429944765:role/irsa-pool/acme/*"),
		"by-stringlike": trust("StringLike", "arn:aws:iam::946429944765:role/irsa-pool/acme/*"),
		"by-arnequals":  trust("ArnEquals", "arn:aws:iam::946429944765:role/irsa-pool/acme/acme-1"),
		// Every part of the pattern is matched on its own.
		"by-arnlike-colon": trust("ArnLike", "arn:aws:iam::*:*"),
		"by-arnnotlike":    trust("ArnNotLike", "arn:aws:iam::946429944765:role/irsa-pool/*"),
	}
	for name, doc := range assets {
		if _, err := f.sim.CreateRole(assetAcct, name, "", doc); err != nil {
			t.Fatal(err)
		}
	}
	bnd, err := f.sim.CreatePolicy(proxyAcct, "boundary", "", boundaryPolicy)
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := f.sim.CreatePolicy(proxyAcct, "narrow", "", denyAllBoundary)
	if err != nil {
		t.Fatal(err)
	}
	perm, err := f.sim.CreatePolicy(proxyAcct, "assume-asset", "", assumeAssetPolicy)
	if err != nil {
		t.Fatal(err)
	}
	members := []struct{ name, path, boundary string }{
		{"acme-1", "/irsa-pool/acme/", bnd},
		{"acme-2", "/irsa-pool/acme/", bnd},
		{"outsider", "/", ""},
		{"acme-narrow", "/irsa-pool/acme/", narrow},
	}
	for _, m := range members {
		in := &iam.CreateRoleInput{RoleName: aws.String(m.name), Path: aws.String(m.path), AssumeRolePolicyDocument: aws.String(trustAnyAWS)}
		if m.boundary != "" {
			in.PermissionsBoundary = aws.String(m.boundary)
		}
		if _, err := proxy.CreateRole(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := proxy.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(m.name), PolicyArn: aws.String(perm)}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]bool{ // member → asset role → allowed
		"acme-1":   {"by-arnlike": true, "by-stringlike": true, "by-arnequals": true, "by-arnlike-colon": true, "by-arnnotlike": false},
		"acme-2":   {"by-arnlike": true, "by-stringlike": true, "by-arnequals": false, "by-arnlike-colon": true, "by-arnnotlike": false},
		"outsider": {"by-arnlike": false, "by-stringlike": false, "by-arnequals": false, "by-arnlike-colon": true, "by-arnnotlike": true},
		// The managed policy allows sts:AssumeRole, the boundary does not.
		"acme-narrow": {"by-arnlike": false, "by-stringlike": false, "by-arnequals": false, "by-arnlike-colon": false, "by-arnnotlike": false},
	}
	for _, m := range members {
		sess := must[*stsAssumeOut](t)(assumeAs(ctx, f, awsConfig(proxyKey, proxySecret, ""), "arn:aws:iam::946429944765:role"+m.path+m.name, 0))
		cfg := awsConfig(sess.key, sess.secret, sess.token)
		for asset, ok := range want[m.name] {
			_, err := assumeAs(ctx, f, cfg, "arn:aws:iam::524112250363:role/"+asset, 0)
			if ok && err != nil {
				t.Errorf("%s → %s: %v", m.name, asset, err)
			}
			if !ok {
				if code := apiCode(err); code != "AccessDenied" {
					t.Errorf("%s → %s: want AccessDenied, got %v", m.name, asset, err)
				}
			}
		}
	}
}

// TestIAMPermissionsBoundaryCondition: an identity policy that allows iam:CreateRole only
// with a given boundary and under a path (the least privilege of an elastic pool).
func TestIAMPermissionsBoundaryCondition(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bnd, err := f.sim.CreatePolicy(proxyAcct, "boundary", "/irsa/", boundaryPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.sim.CreateRole(proxyAcct, "broker", "", trustAnyAWS); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.PutRolePolicy(proxyAcct, "broker", "pools", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"iam:CreateRole","Resource":"arn:aws:iam::946429944765:role/irsa-pool/*",
		 "Condition":{"StringEquals":{"iam:PermissionsBoundary":"`+bnd+`"}}},
		{"Effect":"Allow","Action":"iam:DeleteRole","Resource":"arn:aws:iam::946429944765:role/irsa-pool/*",
		 "Condition":{"StringEquals":{"aws:ResourceTag/managed-by":"irsa-broker"}}}]}`); err != nil {
		t.Fatal(err)
	}
	creds := must[*stsAssumeOut](t)(assumeAs(ctx, f, awsConfig(proxyKey, proxySecret, ""), "arn:aws:iam::946429944765:role/broker", 0))
	c := iam.NewFromConfig(awsConfig(creds.key, creds.secret, creds.token), func(o *iam.Options) { o.BaseEndpoint = aws.String(f.url) })
	create := func(name, path, boundary string, tags ...types.Tag) error {
		in := &iam.CreateRoleInput{RoleName: aws.String(name), Path: aws.String(path), AssumeRolePolicyDocument: aws.String(trustAnyAWS), Tags: tags}
		if boundary != "" {
			in.PermissionsBoundary = aws.String(boundary)
		}
		_, err := c.CreateRole(ctx, in)
		return err
	}
	wantCode(t, create("m0", "/irsa-pool/", ""), "AccessDenied")
	wantCode(t, create("m0", "/", bnd), "AccessDenied")
	if err := create("m1", "/irsa-pool/", bnd, types.Tag{Key: aws.String("managed-by"), Value: aws.String("irsa-broker")}); err != nil {
		t.Fatal(err)
	}
	if err := create("m2", "/irsa-pool/", bnd); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("m2")})
	wantCode(t, err, "AccessDenied")
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("m1")}); err != nil {
		t.Fatalf("tagged member: %v", err)
	}
}

func TestArnMatch(t *testing.T) {
	tests := []struct {
		pattern, value string
		want           bool
	}{
		{"arn:aws:iam::1:role/p/*", "arn:aws:iam::1:role/p/x", true},
		{"arn:aws:iam::1:role/p/*", "arn:aws:iam::1:role/q/x", false},
		{"arn:aws:iam::*:role/*", "arn:aws:iam::1:role/x", true},
		{"arn:aws:iam::*", "arn:aws:iam::1:role/x", false}, // a pattern of five parts matches no ARN
		{"arn:aws:iam::*:*", "arn:aws:iam::1:role/x", true},
		{"arn:aws:iam::*", "arn:aws:iam::1", false},               // not an ARN: five parts
		{"arn:*", "arn:aws:iam::1:role/x", false},                 // the pattern has two parts
		{"arn:aws:*:*:*:*", "arn:aws:iam::1:role/x", true},        // every part wildcarded
		{"arn:aws:iam::1:role/*", "arn:aws:sts::1:role/x", false}, // wildcards do not span parts
		{"arn:aws:iam::1:*", "arn:aws:iam::1:role/a:b", true},     // the resource keeps its colons
		{"arn:aws:iam::1:role/X", "arn:aws:iam::1:role/x", false}, // case-sensitive
		{"arn:aws:iam::1:role/x", "xrn:aws:iam::1:role/x", false},
	}
	for _, tc := range tests {
		if got := arnMatch(tc.pattern, tc.value); got != tc.want {
			t.Errorf("arnMatch(%q, %q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

// FuzzArnMatch checks ArnLike against a reference built from regular expressions: six
// parts, each matched on its own.
func FuzzArnMatch(f *testing.F) {
	f.Add("arn:aws:iam::*:role/irsa-pool/*", "arn:aws:iam::946429944765:role/irsa-pool/acme/m1")
	f.Add("arn:aws:iam::1:*", "arn:aws:iam::1:role/a:b:c")
	f.Add("arn:*:*:*:*:*", "arn:aws:sts::1:assumed-role/r/s")
	f.Add("a?n:aws:iam::1:role/x", "arn:aws:iam::1:role/x")
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if len(pattern) > 200 || len(value) > 200 {
			return
		}
		got := arnMatch(pattern, value)
		pp, vp := strings.SplitN(pattern, ":", 6), strings.SplitN(value, ":", 6)
		want := len(pp) == 6 && len(vp) == 6 && vp[0] == "arn"
		for i := 0; want && i < 6; i++ {
			want = wildcardRegexp(pp[i]).MatchString(vp[i])
		}
		if isASCII(pattern) && isASCII(value) && got != want {
			t.Fatalf("arnMatch(%q, %q) = %v, reference %v", pattern, value, got, want)
		}
		if pattern == value && len(vp) == 6 && vp[0] == "arn" && !strings.ContainsAny(value, "*?") && !got {
			t.Fatalf("an ARN does not match itself: %q", value)
		}
		if got && !regexp.MustCompile(`^arn:`).MatchString(value) {
			t.Fatalf("matched a value that is not an ARN: %q", value)
		}
	})
}
