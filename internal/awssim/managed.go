package awssim

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Customer managed policies, their attachment to roles, permissions boundaries and
// role tags: what CreateRole-based proxy-role pools need, with IAM's validation,
// quotas and error shapes.

const (
	policySizeQuota          = 6144 // PolicySizeQuota: managed policy documents
	attachedPoliciesPerRole  = 10   // AttachedPoliciesPerRoleQuota
	tagsPerRole              = 50
	defaultListItems         = 100
	maxListItems             = 1000
	managedPolicyARNInfix    = ":policy/"
	permissionsBoundaryType  = "PermissionsBoundaryPolicy"
	managedPolicyVersionOnly = "v1" // the simulator keeps one version per policy
)

var (
	policyNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	tagKeyRe     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValueRe   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)
)

type managedPolicy struct {
	name, path, arn, id, description string
	doc                              string
	pol                              *policy
	created                          time.Time
	attachments                      int // roles it is attached to
	boundaryUses                     int // roles whose permissions boundary it is
}

type xmlPolicy struct {
	PolicyName                    string `xml:"PolicyName"`
	PolicyID                      string `xml:"PolicyId"`
	Arn                           string `xml:"Arn"`
	Path                          string `xml:"Path"`
	DefaultVersionID              string `xml:"DefaultVersionId"`
	AttachmentCount               int    `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int    `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool   `xml:"IsAttachable"`
	Description                   string `xml:"Description,omitempty"`
	CreateDate                    string `xml:"CreateDate"`
	UpdateDate                    string `xml:"UpdateDate"`
}

func (p *managedPolicy) xml() xmlPolicy {
	return xmlPolicy{
		PolicyName: p.name, PolicyID: p.id, Arn: p.arn, Path: p.path, DefaultVersionID: managedPolicyVersionOnly,
		AttachmentCount: p.attachments, PermissionsBoundaryUsageCount: p.boundaryUses, IsAttachable: true,
		Description: p.description, CreateDate: awsTime(p.created), UpdateDate: awsTime(p.created),
	}
}

type createPolicyResult struct {
	XMLName struct{}  `xml:"CreatePolicyResult"`
	Policy  xmlPolicy `xml:"Policy"`
}

type getPolicyResult struct {
	XMLName struct{}  `xml:"GetPolicyResult"`
	Policy  xmlPolicy `xml:"Policy"`
}

type xmlAttachedPolicy struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type listAttachedRolePoliciesResult struct {
	XMLName          struct{}            `xml:"ListAttachedRolePoliciesResult"`
	AttachedPolicies []xmlAttachedPolicy `xml:"AttachedPolicies>member"`
	IsTruncated      bool                `xml:"IsTruncated"`
	Marker           string              `xml:"Marker,omitempty"`
}

type listRolePoliciesResult struct {
	XMLName     struct{} `xml:"ListRolePoliciesResult"`
	PolicyNames []string `xml:"PolicyNames>member"`
	IsTruncated bool     `xml:"IsTruncated"`
	Marker      string   `xml:"Marker,omitempty"`
}

type listRoleTagsResult struct {
	XMLName     struct{} `xml:"ListRoleTagsResult"`
	Tags        []xmlTag `xml:"Tags>member"`
	IsTruncated bool     `xml:"IsTruncated"`
	Marker      string   `xml:"Marker,omitempty"`
}

// iamManagedAction handles the managed-policy, boundary and tag actions; ok is false
// for any other action.
func (s *Server) iamManagedAction(acct, action string, form url.Values) (res any, aerr *APIError, ok bool) {
	roleName := form.Get("RoleName")
	need := func(params ...string) *APIError {
		for _, p := range params {
			if form.Get(p) == "" {
				return errMissingParam(p)
			}
		}
		return nil
	}
	switch action {
	case "CreatePolicy":
		if aerr := need("PolicyName", "PolicyDocument"); aerr != nil {
			return nil, aerr, true
		}
		p, aerr := s.createPolicy(acct, form.Get("PolicyName"), form.Get("Path"), form.Get("PolicyDocument"), form.Get("Description"))
		if aerr != nil {
			return nil, aerr, true
		}
		return createPolicyResult{Policy: p.xml()}, nil, true
	case "GetPolicy":
		if aerr := need("PolicyArn"); aerr != nil {
			return nil, aerr, true
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		p, aerr := s.accountLocked(acct).managed(form.Get("PolicyArn"))
		if aerr != nil {
			return nil, aerr, true
		}
		return getPolicyResult{Policy: p.xml()}, nil, true
	case "DeletePolicy":
		if aerr := need("PolicyArn"); aerr != nil {
			return nil, aerr, true
		}
		return nil, s.deletePolicy(acct, form.Get("PolicyArn")), true
	case "AttachRolePolicy", "DetachRolePolicy":
		if aerr := need("RoleName", "PolicyArn"); aerr != nil {
			return nil, aerr, true
		}
		if action == "AttachRolePolicy" {
			return nil, s.attachRolePolicy(acct, roleName, form.Get("PolicyArn")), true
		}
		return nil, s.detachRolePolicy(acct, roleName, form.Get("PolicyArn")), true
	case "ListAttachedRolePolicies":
		if aerr := need("RoleName"); aerr != nil {
			return nil, aerr, true
		}
		res, aerr := s.listAttachedRolePolicies(acct, roleName, form)
		return res, aerr, true
	case "ListRolePolicies":
		if aerr := need("RoleName"); aerr != nil {
			return nil, aerr, true
		}
		res, aerr := s.viewRole(acct, roleName, func(_ *account, r *role) (any, *APIError) {
			names, marker, aerr := page(form, sortedKeys(r.inline))
			if aerr != nil {
				return nil, aerr
			}
			return listRolePoliciesResult{PolicyNames: names, IsTruncated: marker != "", Marker: marker}, nil
		})
		return res, aerr, true
	case "PutRolePermissionsBoundary":
		if aerr := need("RoleName", "PermissionsBoundary"); aerr != nil {
			return nil, aerr, true
		}
		return nil, s.setBoundary(acct, roleName, form.Get("PermissionsBoundary")), true
	case "DeleteRolePermissionsBoundary":
		if aerr := need("RoleName"); aerr != nil {
			return nil, aerr, true
		}
		return nil, s.setBoundary(acct, roleName, ""), true
	case "TagRole":
		if aerr := need("RoleName"); aerr != nil {
			return nil, aerr, true
		}
		tags, aerr := formTags(form)
		if aerr != nil {
			return nil, aerr, true
		}
		if len(tags) == 0 {
			return nil, errMissingParam("Tags"), true
		}
		return nil, s.tagRole(acct, roleName, tags), true
	case "UntagRole":
		if aerr := need("RoleName"); aerr != nil {
			return nil, aerr, true
		}
		keys := memberList(form, "TagKeys")
		if len(keys) == 0 {
			return nil, errMissingParam("TagKeys"), true
		}
		return nil, s.untagRole(acct, roleName, keys), true
	case "ListRoleTags":
		if aerr := need("RoleName"); aerr != nil {
			return nil, aerr, true
		}
		res, aerr := s.viewRole(acct, roleName, func(_ *account, r *role) (any, *APIError) {
			tags, marker, aerr := page(form, r.tags)
			if aerr != nil {
				return nil, aerr
			}
			out := listRoleTagsResult{IsTruncated: marker != "", Marker: marker}
			for _, t := range tags {
				out.Tags = append(out.Tags, xmlTag{Key: t.key, Value: t.value})
			}
			return out, nil
		})
		return res, aerr, true
	}
	return nil, nil, false
}

// formMaxItems reads MaxItems: 1..1000, default 100.
func formMaxItems(form url.Values) (int, *APIError) {
	v := form.Get("MaxItems")
	if v == "" {
		return defaultListItems, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxListItems {
		return 0, errValidation("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v)
	}
	return n, nil
}

// page cuts the page of items that MaxItems and Marker (opaque, from a previous page)
// ask for; marker is "" on the last page.
func page[T any](form url.Values, items []T) (_ []T, marker string, aerr *APIError) {
	n := len(items)
	maxItems, aerr := formMaxItems(form)
	if aerr != nil {
		return nil, "", aerr
	}
	start := 0
	if m := form.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		i, perr := strconv.Atoi(strings.TrimPrefix(string(b), "i"))
		if err != nil || perr != nil || !strings.HasPrefix(string(b), "i") || i < 0 || i > n {
			return nil, "", senderErr(http.StatusBadRequest, "InvalidInput", "Invalid Marker.")
		}
		start = i
	}
	end := min(start+maxItems, n)
	if end < n {
		marker = base64.RawURLEncoding.EncodeToString([]byte("i" + strconv.Itoa(end)))
	}
	return items[start:end], marker, nil
}

// managed returns the account's managed policy with that ARN.
func (a *account) managed(arn string) (*managedPolicy, *APIError) {
	return a.lookupPolicy(arn, "Policy %s does not exist or is not attachable.")
}

// boundaryPolicy returns the managed policy named as a permissions boundary.
func (a *account) boundaryPolicy(arn string) (*managedPolicy, *APIError) {
	if len(arn) < 20 || len(arn) > 2048 {
		return nil, errValidation("1 validation error detected: Value '%s' at 'permissionsBoundary' failed to satisfy constraint: Member must have length between 20 and 2048", arn)
	}
	return a.lookupPolicy(arn, "Scope ARN: %s does not exist or is not attachable.")
}

// lookupPolicy returns the managed policy with that ARN; notFound is IAM's message
// (with the ARN for %s) when there is none, which differs by the parameter that names it.
func (a *account) lookupPolicy(arn, notFound string) (*managedPolicy, *APIError) {
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, managedPolicyARNInfix) {
		return nil, senderErr(http.StatusBadRequest, "InvalidInput", "ARN %s is not valid.", arn)
	}
	p, ok := a.policies[arn]
	if !ok {
		return nil, senderErr(http.StatusNotFound, "NoSuchEntity", notFound, arn)
	}
	return p, nil
}

func (s *Server) createPolicy(acct, name, path, doc, desc string) (*managedPolicy, *APIError) {
	if !policyNameRe.MatchString(name) {
		return nil, errValidation("1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", name)
	}
	if path == "" {
		path = "/"
	}
	if !pathRe.MatchString(path) || len(path) > 512 {
		return nil, errValidation("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	pol, err := parsePolicy(doc, kindIdentity)
	if err != nil {
		return nil, policyAPIError(err)
	}
	if PolicySize(doc) > policySizeQuota {
		return nil, senderErr(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for PolicySize: %d", policySizeQuota)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountLocked(acct)
	for _, p := range a.policies {
		if strings.EqualFold(p.name, name) {
			return nil, senderErr(http.StatusConflict, "EntityAlreadyExists", "A policy called %s already exists. Duplicate names are not allowed.", name)
		}
	}
	p := &managedPolicy{
		name: name, path: path, arn: "arn:aws:iam::" + acct + ":policy" + path + name, id: "ANPA" + randomID(17),
		description: desc, doc: doc, pol: pol, created: s.now(),
	}
	a.policies[p.arn] = p
	return p, nil
}

func (s *Server) deletePolicy(acct, arn string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountLocked(acct)
	p, aerr := a.managed(arn)
	if aerr != nil {
		return aerr
	}
	if p.attachments > 0 || p.boundaryUses > 0 {
		return senderErr(http.StatusConflict, "DeleteConflict", "Cannot delete a policy attached to entities.")
	}
	delete(a.policies, arn)
	return nil
}

func (s *Server) attachRolePolicy(acct, roleName, arn string) *APIError {
	return s.updateRole(acct, roleName, func(a *account, r *role) *APIError {
		p, aerr := a.managed(arn)
		if aerr != nil {
			return aerr
		}
		for _, have := range r.attached {
			if have == arn {
				return nil // attaching twice is a no-op, as in IAM
			}
		}
		if len(r.attached) >= attachedPoliciesPerRole {
			return senderErr(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for PoliciesPerRole: %d", attachedPoliciesPerRole)
		}
		r.attached = append(r.attached, arn)
		p.attachments++
		s.recordLocked(a, r, strings.ToLower(r.name))
		return nil
	})
}

func (s *Server) detachRolePolicy(acct, roleName, arn string) *APIError {
	return s.updateRole(acct, roleName, func(a *account, r *role) *APIError {
		for i, have := range r.attached {
			if have == arn {
				r.attached = append(r.attached[:i:i], r.attached[i+1:]...)
				if p, ok := a.policies[arn]; ok {
					p.attachments--
				}
				s.recordLocked(a, r, strings.ToLower(r.name))
				return nil
			}
		}
		return senderErr(http.StatusNotFound, "NoSuchEntity", "Policy %s was not found.", arn)
	})
}

func (s *Server) listAttachedRolePolicies(acct, roleName string, form url.Values) (any, *APIError) {
	prefix := form.Get("PathPrefix")
	if prefix == "" {
		prefix = "/"
	}
	return s.viewRole(acct, roleName, func(a *account, r *role) (any, *APIError) {
		var matched []xmlAttachedPolicy
		for _, arn := range r.attached {
			if p, ok := a.policies[arn]; ok && strings.HasPrefix(p.path, prefix) {
				matched = append(matched, xmlAttachedPolicy{PolicyName: p.name, PolicyArn: p.arn})
			}
		}
		matched, marker, aerr := page(form, matched)
		if aerr != nil {
			return nil, aerr
		}
		return listAttachedRolePoliciesResult{AttachedPolicies: matched, IsTruncated: marker != "", Marker: marker}, nil
	})
}

// setBoundary sets (arn != "") or removes a role's permissions boundary.
func (s *Server) setBoundary(acct, roleName, arn string) *APIError {
	return s.updateRole(acct, roleName, func(a *account, r *role) *APIError {
		if arn != "" {
			p, aerr := a.boundaryPolicy(arn)
			if aerr != nil {
				return aerr
			}
			p.boundaryUses++
		}
		if old, ok := a.policies[r.boundary]; ok {
			old.boundaryUses--
		}
		r.boundary = arn
		s.recordLocked(a, r, strings.ToLower(r.name))
		return nil
	})
}

// formTags reads Tags.member.N.Key / .Value.
func formTags(form url.Values) ([]tag, *APIError) {
	var out []tag
	for i := 1; ; i++ {
		p := "Tags.member." + strconv.Itoa(i)
		k, ok := form[p+".Key"]
		if !ok || len(k) == 0 {
			return out, checkTags(out)
		}
		out = append(out, tag{key: k[0], value: form.Get(p + ".Value")})
	}
}

// checkTags validates tags as one request's list: at most 50, IAM's key and value
// grammar, keys unique regardless of case.
func checkTags(tags []tag) *APIError {
	if len(tags) > tagsPerRole {
		return errValidation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to %d", tagsPerRole)
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if !tagKeyRe.MatchString(t.key) {
			return errValidation("1 validation error detected: Value '%s' at 'tags.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", t.key)
		}
		if !tagValueRe.MatchString(t.value) {
			return errValidation("1 validation error detected: Value '%s' at 'tags.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", t.value)
		}
		lk := strings.ToLower(t.key)
		if seen[lk] {
			return senderErr(http.StatusBadRequest, "InvalidInput", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[lk] = true
	}
	return nil
}

func (s *Server) tagRole(acct, roleName string, tags []tag) *APIError {
	return s.updateRole(acct, roleName, func(_ *account, r *role) *APIError {
		merged := append([]tag(nil), r.tags...)
	next:
		for _, t := range tags {
			for i := range merged {
				if strings.EqualFold(merged[i].key, t.key) {
					merged[i] = t
					continue next
				}
			}
			merged = append(merged, t)
		}
		if len(merged) > tagsPerRole {
			return senderErr(http.StatusConflict, "LimitExceeded", "The number of tags has reached the maximum limit.")
		}
		r.tags = merged
		return nil
	})
}

func (s *Server) untagRole(acct, roleName string, keys []string) *APIError {
	return s.updateRole(acct, roleName, func(_ *account, r *role) *APIError {
		kept := r.tags[:0:0]
		for _, t := range r.tags {
			drop := false
			for _, k := range keys {
				drop = drop || strings.EqualFold(k, t.key)
			}
			if !drop {
				kept = append(kept, t)
			}
		}
		r.tags = kept
		return nil
	})
}

// iamRequestContext is the request's own condition keys for identity policies:
// iam:PermissionsBoundary, iam:PolicyARN, aws:RequestTag/<key>, aws:TagKeys, and the
// target role's tags as aws:ResourceTag/<key> (and iam:ResourceTag/<key>).
func (s *Server) iamRequestContext(acct, action string, form url.Values) map[string][]string {
	ctx := map[string][]string{}
	switch action {
	case "CreateRole", "PutRolePermissionsBoundary":
		if b := form.Get("PermissionsBoundary"); b != "" {
			ctx["iam:PermissionsBoundary"] = []string{b}
		}
	case "AttachRolePolicy", "DetachRolePolicy":
		ctx["iam:PolicyARN"] = []string{form.Get("PolicyArn")}
	case "UntagRole":
		ctx["aws:TagKeys"] = memberList(form, "TagKeys")
	}
	if action == "CreateRole" || action == "TagRole" {
		var keys []string
		for i := 1; ; i++ {
			p := "Tags.member." + strconv.Itoa(i)
			k := form.Get(p + ".Key")
			if k == "" {
				break
			}
			keys = append(keys, k)
			ctx["aws:RequestTag/"+k] = []string{form.Get(p + ".Value")}
		}
		if len(keys) > 0 {
			ctx["aws:TagKeys"] = keys
		}
	}
	if name := form.Get("RoleName"); name != "" && action != "CreateRole" {
		s.mu.RLock()
		if r, aerr := s.roleLocked(acct, name); aerr == nil {
			for _, t := range r.tags {
				ctx["aws:ResourceTag/"+t.key] = []string{t.value}
				ctx["iam:ResourceTag/"+t.key] = []string{t.value}
			}
		}
		s.mu.RUnlock()
	}
	return ctx
}
