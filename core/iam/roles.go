package iam

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// The role life cycle of elastic proxy-role pools (docs/design/pools.md):
// list a pool's path, create a member from a template, delete it again.

// NewRole is what CreateRole creates.
type NewRole struct {
	Name, Path, Description string
	TrustPolicy             string
	PermissionsBoundary     string // managed policy ARN
	Tags                    map[string]string
}

// CodeEntityAlreadyExists is IAM's error code for a name already taken.
const CodeEntityAlreadyExists = "EntityAlreadyExists"

// ListRoles lists the roles whose path starts with pathPrefix (every page).
// Their TrustPolicy is URL-decoded.
func (c *Client) ListRoles(ctx context.Context, pathPrefix string) ([]Role, error) {
	var out []Role
	p := awsiam.NewListRolesPaginator(c.api, &awsiam.ListRolesInput{PathPrefix: aws.String(pathPrefix)})
	for p.HasMorePages() {
		cctx, cancel := c.callCtx(ctx)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, classify(err, "iam:ListRoles", "")
		}
		for _, r := range page.Roles {
			doc, _ := DecodePolicy(aws.ToString(r.AssumeRolePolicyDocument))
			out = append(out, Role{ARN: aws.ToString(r.Arn), Name: aws.ToString(r.RoleName), Path: aws.ToString(r.Path), ID: aws.ToString(r.RoleId), TrustPolicy: doc})
		}
	}
	return out, nil
}

// CreateRole creates a role. An *Error with Code CodeEntityAlreadyExists
// means the name is taken; KindLimitExceeded, the account's roles quota.
func (c *Client) CreateRole(ctx context.Context, r NewRole) (Role, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	in := &awsiam.CreateRoleInput{
		RoleName:                 aws.String(r.Name),
		Path:                     aws.String(r.Path),
		AssumeRolePolicyDocument: aws.String(r.TrustPolicy),
	}
	if r.Description != "" {
		in.Description = aws.String(r.Description)
	}
	if r.PermissionsBoundary != "" {
		in.PermissionsBoundary = aws.String(r.PermissionsBoundary)
	}
	for k, v := range r.Tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := c.api.CreateRole(ctx, in)
	if err != nil {
		return Role{}, classify(err, "iam:CreateRole", r.Name)
	}
	return Role{ARN: aws.ToString(out.Role.Arn), Name: aws.ToString(out.Role.RoleName), Path: aws.ToString(out.Role.Path),
		ID: aws.ToString(out.Role.RoleId), TrustPolicy: r.TrustPolicy, Tags: r.Tags}, nil
}

// CopyRolePolicies gives role to the permissions of role from: each inline
// policy (same name, same document) and each attached managed policy.
func (c *Client) CopyRolePolicies(ctx context.Context, from, to string) error {
	names, err := c.inlinePolicies(ctx, from)
	if err != nil {
		return err
	}
	for _, name := range names {
		cctx, cancel := c.callCtx(ctx)
		got, err := c.api.GetRolePolicy(cctx, &awsiam.GetRolePolicyInput{RoleName: aws.String(from), PolicyName: aws.String(name)})
		cancel()
		if err != nil {
			return classify(err, "iam:GetRolePolicy", from)
		}
		doc, err := DecodePolicy(aws.ToString(got.PolicyDocument))
		if err != nil {
			return &Error{Kind: KindMalformedPolicy, Action: "iam:GetRolePolicy", Role: from, Err: err}
		}
		cctx, cancel = c.callCtx(ctx)
		_, err = c.api.PutRolePolicy(cctx, &awsiam.PutRolePolicyInput{RoleName: aws.String(to), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
		cancel()
		if err != nil {
			return classify(err, "iam:PutRolePolicy", to)
		}
	}
	arns, err := c.attachedPolicies(ctx, from)
	if err != nil {
		return err
	}
	for _, arn := range arns {
		cctx, cancel := c.callCtx(ctx)
		_, err := c.api.AttachRolePolicy(cctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String(to), PolicyArn: aws.String(arn)})
		cancel()
		if err != nil {
			return classify(err, "iam:AttachRolePolicy", to)
		}
	}
	return nil
}

// DeleteRole deletes a role after deleting its inline policies and
// detaching its managed ones (IAM refuses to delete a role that has any). A
// role that is already gone is not an error.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	gone := func(err error) bool { return IsKind(err, KindNoSuchEntity) }
	names, err := c.inlinePolicies(ctx, name)
	if gone(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range names {
		cctx, cancel := c.callCtx(ctx)
		_, err := c.api.DeleteRolePolicy(cctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)})
		cancel()
		if err != nil {
			if e := classify(err, "iam:DeleteRolePolicy", name); !gone(e) {
				return e
			}
		}
	}
	arns, err := c.attachedPolicies(ctx, name)
	if err != nil && !gone(err) {
		return err
	}
	for _, arn := range arns {
		cctx, cancel := c.callCtx(ctx)
		_, err := c.api.DetachRolePolicy(cctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)})
		cancel()
		if err != nil {
			if e := classify(err, "iam:DetachRolePolicy", name); !gone(e) {
				return e
			}
		}
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	if _, err := c.api.DeleteRole(cctx, &awsiam.DeleteRoleInput{RoleName: aws.String(name)}); err != nil {
		if e := classify(err, "iam:DeleteRole", name); !gone(e) {
			return e
		}
	}
	return nil
}

func (c *Client) inlinePolicies(ctx context.Context, role string) ([]string, error) {
	var out []string
	p := awsiam.NewListRolePoliciesPaginator(c.api, &awsiam.ListRolePoliciesInput{RoleName: aws.String(role)})
	for p.HasMorePages() {
		cctx, cancel := c.callCtx(ctx)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, classify(err, "iam:ListRolePolicies", role)
		}
		out = append(out, page.PolicyNames...)
	}
	return out, nil
}

func (c *Client) attachedPolicies(ctx context.Context, role string) ([]string, error) {
	var out []string
	p := awsiam.NewListAttachedRolePoliciesPaginator(c.api, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	for p.HasMorePages() {
		cctx, cancel := c.callCtx(ctx)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, classify(err, "iam:ListAttachedRolePolicies", role)
		}
		for _, a := range page.AttachedPolicies {
			out = append(out, aws.ToString(a.PolicyArn))
		}
	}
	return out, nil
}

// RolesUsage returns the account's role count and its roles quota
// (GetAccountSummary's Roles and RolesQuota; not cached).
func (c *Client) RolesUsage(ctx context.Context) (used, quota int, err error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := c.api.GetAccountSummary(ctx, &awsiam.GetAccountSummaryInput{})
	if err != nil {
		return 0, 0, classify(err, "iam:GetAccountSummary", "")
	}
	used, quota = int(out.SummaryMap[string(types.SummaryKeyTypeRoles)]), int(out.SummaryMap[string(types.SummaryKeyTypeRolesQuota)])
	if quota <= 0 {
		return used, 0, errors.New("iam:GetAccountSummary: no RolesQuota")
	}
	return used, quota, nil
}
