package awssim

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// --- response shapes ---

type xmlRole struct {
	Path                     string `xml:"Path"`
	RoleName                 string `xml:"RoleName"`
	RoleID                   string `xml:"RoleId"`
	Arn                      string `xml:"Arn"`
	CreateDate               string `xml:"CreateDate"`
	AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument"`
	Description              string `xml:"Description,omitempty"`
	MaxSessionDuration       int    `xml:"MaxSessionDuration"`
	// GetRole and CreateRole only (ListRoles leaves them out, as IAM does).
	PermissionsBoundary *xmlBoundary `xml:"PermissionsBoundary,omitempty"`
	Tags                *xmlTags     `xml:"Tags,omitempty"`
}

type xmlTags struct {
	Members []xmlTag `xml:"member"`
}

type xmlBoundary struct {
	PermissionsBoundaryType string `xml:"PermissionsBoundaryType"`
	PermissionsBoundaryArn  string `xml:"PermissionsBoundaryArn"`
}

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type createRoleResult struct {
	XMLName struct{} `xml:"CreateRoleResult"`
	Role    xmlRole  `xml:"Role"`
}

type getRoleResult struct {
	XMLName struct{} `xml:"GetRoleResult"`
	Role    xmlRole  `xml:"Role"`
}

type listRolesResult struct {
	XMLName     struct{}  `xml:"ListRolesResult"`
	IsTruncated bool      `xml:"IsTruncated"`
	Marker      string    `xml:"Marker,omitempty"`
	Roles       []xmlRole `xml:"Roles>member"`
}

type getRolePolicyResult struct {
	XMLName        struct{} `xml:"GetRolePolicyResult"`
	RoleName       string   `xml:"RoleName"`
	PolicyName     string   `xml:"PolicyName"`
	PolicyDocument string   `xml:"PolicyDocument"`
}

type createOIDCResult struct {
	XMLName                  struct{} `xml:"CreateOpenIDConnectProviderResult"`
	OpenIDConnectProviderArn string   `xml:"OpenIDConnectProviderArn"`
}

type getOIDCResult struct {
	XMLName        struct{} `xml:"GetOpenIDConnectProviderResult"`
	URL            string   `xml:"Url"`
	ClientIDList   xmlList  `xml:"ClientIDList"`
	ThumbprintList xmlList  `xml:"ThumbprintList"`
	CreateDate     string   `xml:"CreateDate"`
}

type summaryEntry struct {
	Key   string `xml:"key"`
	Value int    `xml:"value"`
}

type getAccountSummaryResult struct {
	XMLName    struct{}       `xml:"GetAccountSummaryResult"`
	SummaryMap []summaryEntry `xml:"SummaryMap>entry"`
}

func (r *role) xml() xmlRole {
	return xmlRole{
		Path:                     r.path,
		RoleName:                 r.name,
		RoleID:                   r.id,
		Arn:                      r.arn,
		CreateDate:               awsTime(r.created),
		AssumeRolePolicyDocument: URLEncodePolicy(r.trustDoc),
		Description:              r.description,
		MaxSessionDuration:       r.maxSession,
	}
}

// xmlFull is the role as GetRole and CreateRole return it: with its permissions
// boundary and tags.
func (r *role) xmlFull() xmlRole {
	x := r.xml()
	if r.boundary != "" {
		x.PermissionsBoundary = &xmlBoundary{PermissionsBoundaryType: permissionsBoundaryType, PermissionsBoundaryArn: r.boundary}
	}
	if len(r.tags) > 0 {
		x.Tags = &xmlTags{}
		for _, t := range r.tags {
			x.Tags.Members = append(x.Tags.Members, xmlTag{Key: t.key, Value: t.value})
		}
	}
	return x
}

// --- dispatch ---

func (s *Server) iamAction(action string, form url.Values, c *caller) (any, *APIError) {
	roleName := form.Get("RoleName")
	resource := "*"
	if roleName != "" {
		resource = "role " + roleName
	}
	if action == "GetOpenIDConnectProvider" {
		resource = form.Get("OpenIDConnectProviderArn")
	}
	if strings.HasSuffix(action, "Policy") && roleName == "" && form.Get("PolicyArn") != "" {
		resource = form.Get("PolicyArn")
	}
	if aerr := s.authorize(c, "iam:"+action, resource, s.iamResourceARN(c.account, action, form), s.iamRequestContext(c.account, action, form)); aerr != nil {
		return nil, aerr
	}
	acct := c.account
	if res, aerr, ok := s.iamManagedAction(acct, action, form); ok {
		return res, aerr
	}
	switch action {
	case "CreateRole":
		maxSession := 0
		if v := form.Get("MaxSessionDuration"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 3600 || n > 43200 {
				return nil, errValidation("1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v)
			}
			maxSession = n
		}
		if roleName == "" {
			return nil, errMissingParam("RoleName")
		}
		if form.Get("AssumeRolePolicyDocument") == "" {
			return nil, errMissingParam("AssumeRolePolicyDocument")
		}
		tags, aerr := formTags(form)
		if aerr != nil {
			return nil, aerr
		}
		r, aerr := s.createRole(acct, roleSpec{name: roleName, path: form.Get("Path"), trust: form.Get("AssumeRolePolicyDocument"),
			description: form.Get("Description"), maxSession: maxSession, boundary: form.Get("PermissionsBoundary"), tags: tags})
		if aerr != nil {
			return nil, aerr
		}
		return createRoleResult{Role: r.xmlFull()}, nil
	case "GetRole":
		if roleName == "" {
			return nil, errMissingParam("RoleName")
		}
		return s.viewRole(acct, roleName, func(_ *account, r *role) (any, *APIError) {
			return getRoleResult{Role: r.xmlFull()}, nil
		})
	case "ListRoles":
		return s.listRoles(acct, form)
	case "DeleteRole":
		if roleName == "" {
			return nil, errMissingParam("RoleName")
		}
		return nil, s.deleteRole(acct, roleName)
	case "UpdateAssumeRolePolicy":
		if roleName == "" {
			return nil, errMissingParam("RoleName")
		}
		if form.Get("PolicyDocument") == "" {
			return nil, errMissingParam("PolicyDocument")
		}
		return nil, s.updateTrust(acct, roleName, form.Get("PolicyDocument"))
	case "PutRolePolicy":
		for _, p := range []string{"RoleName", "PolicyName", "PolicyDocument"} {
			if form.Get(p) == "" {
				return nil, errMissingParam(p)
			}
		}
		return nil, s.putRolePolicy(acct, roleName, form.Get("PolicyName"), form.Get("PolicyDocument"))
	case "GetRolePolicy":
		return s.viewRole(acct, roleName, func(_ *account, r *role) (any, *APIError) {
			ip, ok := r.inline[form.Get("PolicyName")]
			if !ok {
				return nil, senderErr(http.StatusNotFound, "NoSuchEntity", "The role policy with name %s cannot be found.", form.Get("PolicyName"))
			}
			return getRolePolicyResult{RoleName: r.name, PolicyName: ip.name, PolicyDocument: URLEncodePolicy(ip.doc)}, nil
		})
	case "DeleteRolePolicy":
		return nil, s.deleteRolePolicy(acct, roleName, form.Get("PolicyName"))
	case "CreateOpenIDConnectProvider":
		if form.Get("Url") == "" {
			return nil, errMissingParam("Url")
		}
		p, aerr := s.createOIDCProvider(acct, form.Get("Url"), memberList(form, "ClientIDList"), memberList(form, "ThumbprintList"))
		if aerr != nil {
			return nil, aerr
		}
		return createOIDCResult{OpenIDConnectProviderArn: p.arn}, nil
	case "GetOpenIDConnectProvider":
		arn := form.Get("OpenIDConnectProviderArn")
		s.mu.RLock()
		defer s.mu.RUnlock()
		p, ok := s.accounts[acct].providers[arn]
		if !ok {
			return nil, senderErr(http.StatusNotFound, "NoSuchEntity", "OpenIDConnect Provider not found for arn %s", arn)
		}
		return getOIDCResult{
			URL:            p.hostPath,
			ClientIDList:   xmlList{Members: p.clientIDs},
			ThumbprintList: xmlList{Members: p.thumbprint},
			CreateDate:     awsTime(p.created),
		}, nil
	case "GetAccountSummary":
		return s.accountSummary(acct), nil
	}
	return nil, senderErr(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, iamVersion)
}

func (s *Server) iamResourceARN(acct, action string, form url.Values) string {
	switch action {
	case "GetOpenIDConnectProvider":
		return form.Get("OpenIDConnectProviderArn")
	case "CreateOpenIDConnectProvider":
		return "arn:aws:iam::" + acct + ":oidc-provider/" + stripScheme(form.Get("Url"))
	case "GetAccountSummary":
		return "*"
	case "ListRoles":
		return "arn:aws:iam::" + acct + ":role/"
	case "CreatePolicy":
		path := form.Get("Path")
		if path == "" {
			path = "/"
		}
		return "arn:aws:iam::" + acct + ":policy" + path + form.Get("PolicyName")
	case "GetPolicy", "DeletePolicy":
		return form.Get("PolicyArn")
	}
	path := form.Get("Path")
	if path == "" {
		s.mu.RLock()
		if a, ok := s.accounts[acct]; ok {
			if r, ok := a.roles[strings.ToLower(form.Get("RoleName"))]; ok {
				path = r.path
			}
		}
		s.mu.RUnlock()
	}
	if path == "" {
		path = "/"
	}
	return "arn:aws:iam::" + acct + ":role" + path + form.Get("RoleName")
}

// authorize applies the key's deny list (long-term keys) or the session role's inline
// policies (temporary credentials) to an action. resourceDesc appears in the message
// the way AWS words it ("role NAME"); resourceARN is what policies are matched against.
//
// reqCtx holds the request's own condition keys (iam:PermissionsBoundary,
// aws:RequestTag/..., aws:TagKeys, iam:PolicyARN), nil when it has none.
func (s *Server) authorize(c *caller, action, resourceDesc, resourceARN string, reqCtx map[string][]string) *APIError {
	deny := func(reason string) *APIError {
		return senderErr(http.StatusForbidden, "AccessDenied",
			"User: %s is not authorized to perform: %s on resource: %s because %s", c.arn, action, resourceDesc, reason)
	}
	if c.key != nil {
		for _, d := range c.key.denied {
			svc, act, _ := strings.Cut(d, ":")
			asvc, aact, _ := strings.Cut(strings.ToLower(action), ":")
			if wildcardMatch(svc, asvc) && wildcardMatch(act, aact) {
				return deny("no identity-based policy allows the " + action + " action")
			}
		}
		return nil
	}
	v := s.roleView(c.account, c.sess.roleName)
	if v == nil {
		return deny("no identity-based policy allows the " + action + " action")
	}
	switch evalIdentity(v.inline, action, resourceARN, c, reqCtx) {
	case decisionDeny:
		return deny("with an explicit deny in an identity-based policy")
	case decisionNone:
		return deny("no identity-based policy allows the " + action + " action")
	}
	if v.boundary != nil {
		switch evalIdentity([]*policy{v.boundary}, action, resourceARN, c, reqCtx) {
		case decisionDeny:
			return deny("with an explicit deny in a permissions boundary")
		case decisionNone:
			return deny("no permissions boundary allows the " + action + " action")
		}
	}
	return nil
}

func evalIdentity(pols []*policy, action, resource string, c *caller, reqCtx map[string][]string) decision {
	ctx := map[string][]string{
		"aws:PrincipalArn":     {principalARNOf(c)},
		"aws:PrincipalAccount": {c.account},
	}
	for k, v := range reqCtx {
		ctx[k] = v
	}
	req := evalRequest{Action: action, Resource: resource, Context: ctx}
	out := decisionNone
	for _, p := range pols {
		switch p.evaluate(req) {
		case decisionDeny:
			return decisionDeny
		case decisionAllow:
			out = decisionAllow
		}
	}
	return out
}

// principalARNOf is the IAM ARN trust policies name for a caller: the role ARN for
// sessions, the user or root ARN for long-term keys.
func principalARNOf(c *caller) string {
	if c.sess != nil {
		return c.sess.roleARN
	}
	return c.arn
}

// --- operations (also used by the Go API) ---

func (s *Server) roleLocked(acct, name string) (*role, *APIError) {
	a, ok := s.accounts[acct]
	if !ok {
		return nil, errNoSuchRole(name)
	}
	r, ok := a.roles[strings.ToLower(name)]
	if !ok {
		return nil, errNoSuchRole(name)
	}
	return r, nil
}

// updateRole runs fn on the account's role named name under the write lock
// (NoSuchEntity if there is none).
func (s *Server) updateRole(acct, name string, fn func(a *account, r *role) *APIError) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, aerr := s.roleLocked(acct, name)
	if aerr != nil {
		return aerr
	}
	return fn(s.accounts[acct], r)
}

// viewRole is updateRole for reads: fn builds an action's result under the read lock.
func (s *Server) viewRole(acct, name string, fn func(a *account, r *role) (any, *APIError)) (any, *APIError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, aerr := s.roleLocked(acct, name)
	if aerr != nil {
		return nil, aerr
	}
	return fn(s.accounts[acct], r)
}

func (s *Server) checkTrustDoc(a *account, doc string) (*policy, *APIError) {
	if len(doc) > 131072 {
		return nil, errValidation("1 validation error detected: Value at 'policyDocument' failed to satisfy constraint: Member must have length less than or equal to 131072")
	}
	pol, err := parsePolicy(doc, kindTrust)
	if err != nil {
		return nil, policyAPIError(err)
	}
	if n := PolicySize(doc); n > a.quota {
		return nil, senderErr(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: %d", a.quota)
	}
	return pol, nil
}

func policyAPIError(err error) *APIError {
	var pe *PolicyError
	if errors.As(err, &pe) {
		return senderErr(http.StatusBadRequest, "MalformedPolicyDocument", "%s", pe.Msg)
	}
	return senderErr(http.StatusBadRequest, "MalformedPolicyDocument", "Syntax errors in policy.")
}

// roleSpec is what CreateRole takes.
type roleSpec struct {
	name, path, trust, description string
	maxSession                     int
	boundary                       string // policy ARN, "" for none
	tags                           []tag
}

func (s *Server) createRole(acct string, spec roleSpec) (*role, *APIError) {
	name, path := spec.name, spec.path
	if !roleNameRe.MatchString(name) {
		return nil, errValidation("1 validation error detected: Value '%s' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", name)
	}
	if path == "" {
		path = "/"
	}
	if !pathRe.MatchString(path) || len(path) > 512 {
		return nil, errValidation("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	if len(spec.description) > 1000 {
		return nil, errValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	if aerr := checkTags(spec.tags); aerr != nil {
		return nil, aerr
	}
	maxSession := spec.maxSession
	if maxSession == 0 {
		maxSession = defaultMaxSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountLocked(acct)
	if _, exists := a.roles[strings.ToLower(name)]; exists {
		return nil, senderErr(http.StatusConflict, "EntityAlreadyExists", "Role with name %s already exists.", name)
	}
	pol, aerr := s.checkTrustDoc(a, spec.trust)
	if aerr != nil {
		return nil, aerr
	}
	if spec.boundary != "" {
		if _, aerr := a.boundaryPolicy(spec.boundary); aerr != nil {
			return nil, aerr
		}
	}
	if len(a.roles) >= a.rolesQuota {
		return nil, senderErr(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for RolesPerAccount: %d", a.rolesQuota)
	}
	r := &role{
		name:        name,
		path:        path,
		arn:         "arn:aws:iam::" + acct + ":role" + path + name,
		id:          "AROA" + randomID(17),
		description: spec.description,
		created:     s.now(),
		maxSession:  maxSession,
		trustDoc:    spec.trust,
		trust:       pol,
		inline:      map[string]*inlinePolicy{},
		boundary:    spec.boundary,
		tags:        append([]tag(nil), spec.tags...),
	}
	if spec.boundary != "" {
		a.policies[spec.boundary].boundaryUses++
	}
	a.roles[strings.ToLower(name)] = r
	s.recordLocked(a, r, strings.ToLower(name))
	return r, nil
}

func (s *Server) updateTrust(acct, name, doc string) *APIError {
	return s.updateRole(acct, name, func(a *account, r *role) *APIError {
		pol, aerr := s.checkTrustDoc(a, doc)
		if aerr != nil {
			return aerr
		}
		r.trustDoc, r.trust = doc, pol
		s.recordLocked(a, r, strings.ToLower(r.name))
		return nil
	})
}

func (s *Server) putRolePolicy(acct, roleName, policyName, doc string) *APIError {
	if !roleNameRe.MatchString(policyName) || len(policyName) > 128 {
		return errValidation("1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", policyName)
	}
	pol, err := parsePolicy(doc, kindIdentity)
	if err != nil {
		return policyAPIError(err)
	}
	return s.updateRole(acct, roleName, func(a *account, r *role) *APIError {
		total := PolicySize(doc)
		for n, ip := range r.inline {
			if n != policyName {
				total += PolicySize(ip.doc)
			}
		}
		if total > rolePolicySizeQuota {
			return senderErr(http.StatusConflict, "LimitExceeded", "Maximum policy size of %d bytes exceeded for role %s", rolePolicySizeQuota, r.name)
		}
		r.inline[policyName] = &inlinePolicy{name: policyName, doc: doc, pol: pol}
		s.recordLocked(a, r, strings.ToLower(r.name))
		return nil
	})
}

func (s *Server) deleteRolePolicy(acct, roleName, policyName string) *APIError {
	return s.updateRole(acct, roleName, func(a *account, r *role) *APIError {
		if _, ok := r.inline[policyName]; !ok {
			return senderErr(http.StatusNotFound, "NoSuchEntity", "The role policy with name %s cannot be found.", policyName)
		}
		delete(r.inline, policyName)
		s.recordLocked(a, r, strings.ToLower(r.name))
		return nil
	})
}

func (s *Server) deleteRole(acct, name string) *APIError {
	return s.updateRole(acct, name, func(a *account, r *role) *APIError {
		if len(r.inline) > 0 {
			return senderErr(http.StatusConflict, "DeleteConflict", "Cannot delete entity, must delete policies first.")
		}
		if len(r.attached) > 0 {
			return senderErr(http.StatusConflict, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
		}
		if p, ok := a.policies[r.boundary]; ok {
			p.boundaryUses--
		}
		key := strings.ToLower(r.name)
		delete(a.roles, key)
		s.recordLocked(a, nil, key)
		return nil
	})
}

func (s *Server) listRoles(acct string, form url.Values) (any, *APIError) {
	prefix := form.Get("PathPrefix")
	if prefix == "" {
		prefix = "/"
	}
	maxItems, aerr := formMaxItems(form)
	if aerr != nil {
		return nil, aerr
	}
	after := ""
	if m := form.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		if err != nil {
			return nil, senderErr(http.StatusBadRequest, "InvalidInput", "Invalid Marker.")
		}
		after = string(b)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.accounts[acct]
	var matched []*role
	for _, r := range a.roles {
		if strings.HasPrefix(r.path, prefix) {
			matched = append(matched, r)
		}
	}
	sort.Slice(matched, func(i, j int) bool { return strings.ToLower(matched[i].name) < strings.ToLower(matched[j].name) })
	res := listRolesResult{}
	for _, r := range matched {
		if after != "" && strings.ToLower(r.name) <= after {
			continue
		}
		if len(res.Roles) == maxItems {
			res.IsTruncated = true
			last := res.Roles[len(res.Roles)-1].RoleName
			res.Marker = base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(last)))
			break
		}
		res.Roles = append(res.Roles, r.xml())
	}
	return res, nil
}

func stripScheme(u string) string {
	u = strings.TrimPrefix(u, "https://")
	u = strings.TrimPrefix(u, "http://")
	return strings.TrimSuffix(u, "/")
}

func (s *Server) createOIDCProvider(acct, rawURL string, clientIDs, thumbprints []string) (*oidcProvider, *APIError) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && s.allowHTTP)) ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, senderErr(http.StatusBadRequest, "InvalidInput", "Invalid issuer URL %q: must be https://host[/path]", rawURL)
	}
	if len(clientIDs) > 100 {
		return nil, senderErr(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100")
	}
	hostPath := stripScheme(rawURL)
	arn := "arn:aws:iam::" + acct + ":oidc-provider/" + hostPath
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountLocked(acct)
	if _, ok := a.providers[arn]; ok {
		return nil, senderErr(http.StatusConflict, "EntityAlreadyExists", "Provider with url %s already exists.", rawURL)
	}
	p := &oidcProvider{
		arn:        arn,
		url:        strings.TrimSuffix(rawURL, "/"),
		hostPath:   hostPath,
		clientIDs:  append([]string(nil), clientIDs...),
		thumbprint: append([]string(nil), thumbprints...),
		created:    s.now(),
	}
	a.providers[arn] = p
	return p, nil
}

func (s *Server) accountSummary(acct string) getAccountSummaryResult {
	s.mu.RLock()
	a := s.accounts[acct]
	roles, providers, quota, rolesQuota, policies := len(a.roles), len(a.providers), a.quota, a.rolesQuota, len(a.policies)
	s.mu.RUnlock()
	m := map[string]int{
		"Users": 0, "UsersQuota": 5000, "Groups": 0, "GroupsQuota": 300,
		"ServerCertificates": 0, "ServerCertificatesQuota": 20,
		"UserPolicySizeQuota": 2048, "GroupPolicySizeQuota": 5120, "GroupsPerUserQuota": 10,
		"SigningCertificatesPerUserQuota": 2, "AccessKeysPerUserQuota": 2,
		"MFADevices": 0, "MFADevicesInUse": 0, "AccountMFAEnabled": 0,
		"AccountAccessKeysPresent": 0, "AccountSigningCertificatesPresent": 0,
		"AttachedPoliciesPerGroupQuota": 10, "AttachedPoliciesPerRoleQuota": 10,
		"AttachedPoliciesPerUserQuota": 10, "Policies": policies, "PoliciesQuota": 1500,
		"PolicySizeQuota": 6144, "PolicyVersionsInUse": 0, "PolicyVersionsInUseQuota": 10000,
		"VersionsPerPolicyQuota": 5, "GlobalEndpointTokenVersion": 1,
		"Roles": roles, "RolesQuota": rolesQuota, "InstanceProfiles": 0, "InstanceProfilesQuota": 1000,
		"RolePolicySizeQuota": rolePolicySizeQuota, "AssumeRolePolicySizeQuota": quota,
		"Providers": providers,
	}
	res := getAccountSummaryResult{}
	for _, k := range sortedKeys(m) {
		res.SummaryMap = append(res.SummaryMap, summaryEntry{Key: k, Value: m[k]})
	}
	return res
}
