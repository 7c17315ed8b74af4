package model

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ProxyPool is the proxy side of a role pair when it is more than one role:
// a list of proxy roles that all trust the cluster's OIDC provider and may
// all assume the pair's asset role. A subject (a run's service account) is
// placed in one member; see docs/design/pools.md. A pair without a pool is a
// pool of one, its ProxyIAMRoleARN.
//
// A ProxyPool is not modified once it is part of a RolePair: copies of a
// mapping share it.
type ProxyPool struct {
	// Name names the pool in metrics, Events, /v2/trust and the tags of
	// elastic members. Empty: the role name of the first member.
	Name string `json:"name,omitempty"`
	// Members are the static members, role ARNs in the broker's account;
	// the first is the pair's ProxyIAMRoleARN.
	Members []string `json:"members"`
	// Elastic, when set, lets the broker create members when every member
	// is full and delete them once they stayed empty.
	Elastic *ElasticPool `json:"elastic,omitempty"`
}

// ElasticPool configures a pool whose members the broker creates from a
// template proxy role and deletes again.
type ElasticPool struct {
	// TemplateRoleARN is copied into each new member: its managed (OIDC
	// federated) statement with no subject, its inline and attached policies.
	TemplateRoleARN string `json:"template_role_arn"`
	// Path is the dedicated IAM path of the members the broker creates
	// ("/irsa-pools/acme/"). Every role under it is a member of this pool;
	// the asset role trusts the pool by an aws:PrincipalArn ArnLike condition
	// on it.
	Path string `json:"path"`
	// PermissionsBoundaryARN is set on every member created (required: the
	// broker's iam:CreateRole permission demands it).
	PermissionsBoundaryARN string `json:"permissions_boundary_arn"`
	// MaxMembers caps the created members (static ones not counted);
	// DefaultElasticMaxMembers when zero.
	MaxMembers int `json:"max_members,omitempty"`
	// EmptyGraceSeconds is how long a created member stays without any
	// subject before it is deleted; DefaultElasticEmptyGraceSeconds when zero.
	EmptyGraceSeconds int `json:"empty_grace_seconds,omitempty"`
}

// Defaults and limits of pools.
const (
	MaxPoolMembers                  = 100
	DefaultElasticMaxMembers        = 50
	MaxElasticMembers               = 1000
	DefaultElasticEmptyGraceSeconds = 3600
	// MaxPoolNameLength leaves room for the "-NNN" suffix of an elastic
	// member's role name (64 characters at most).
	MaxPoolNameLength = 56
)

var (
	poolNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+=,.@_-]*$`)
	policyARNRE  = regexp.MustCompile(`^arn:(aws|aws-us-gov|aws-cn):iam::[0-9]{12}:policy/([\x21-\x2E\x30-\x7E]+/)*[\w+=,.@-]{1,128}$`)
	elasticPathR = regexp.MustCompile(`^/([\x21-\x2E\x30-\x7E]+/)+$`)
)

// IsPool reports whether the pair's proxy side is a pool (rather than the
// legacy single role).
func (p RolePair) IsPool() bool { return p.ProxyPool != nil }

// ProxyMembers lists the static proxy roles of the pair: the pool's members,
// or the single proxy role.
func (p RolePair) ProxyMembers() []string {
	if p.ProxyPool != nil && len(p.ProxyPool.Members) > 0 {
		return p.ProxyPool.Members
	}
	return []string{p.ProxyIAMRoleARN}
}

// PoolName is the name of the pair's pool: its Name, or the role name of its
// first member (for a single role, that role's name).
func (p RolePair) PoolName() string {
	if p.ProxyPool != nil && p.ProxyPool.Name != "" {
		return p.ProxyPool.Name
	}
	arn, err := ParseRoleARN(p.ProxyMembers()[0])
	if err != nil {
		return p.ProxyMembers()[0]
	}
	return arn.Name
}

// Clone returns a deep copy of the pool.
func (pp *ProxyPool) Clone() *ProxyPool {
	if pp == nil {
		return nil
	}
	c := *pp
	c.Members = slices.Clone(pp.Members)
	if pp.Elastic != nil {
		e := *pp.Elastic
		c.Elastic = &e
	}
	return &c
}

// MaxMembers is the elastic pool's cap on created members (0 for a static pool).
func (pp *ProxyPool) MaxMembers() int {
	if pp == nil || pp.Elastic == nil {
		return 0
	}
	if pp.Elastic.MaxMembers == 0 {
		return DefaultElasticMaxMembers
	}
	return pp.Elastic.MaxMembers
}

// EmptyGraceSeconds is how long an elastic member may stay empty.
func (pp *ProxyPool) EmptyGraceSeconds() int {
	if pp == nil || pp.Elastic == nil {
		return 0
	}
	if pp.Elastic.EmptyGraceSeconds == 0 {
		return DefaultElasticEmptyGraceSeconds
	}
	return pp.Elastic.EmptyGraceSeconds
}

// validate checks the pool of a pair whose proxy role is proxy. Errors name
// the field under proxy_pool.
func (pp *ProxyPool) validate(proxy string) error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{Field: "proxy_pool." + field, Message: fmt.Sprintf(format, args...)}
	}
	if len(pp.Members) == 0 {
		return bad("members", "at least one proxy role is required")
	}
	if len(pp.Members) > MaxPoolMembers {
		return bad("members", "at most %d static members (use an elastic pool for more)", MaxPoolMembers)
	}
	if pp.Members[0] != proxy {
		return bad("members", "the first member must be the pair's proxy_iam_role_arn %q", proxy)
	}
	seen := map[string]bool{}
	var account string
	for i, m := range pp.Members {
		arn, err := ParseRoleARN(m)
		if err != nil {
			return bad("members", "member %d: %s", i+1, err.Error())
		}
		if arn.String() != m {
			return bad("members", "member %d: %q is not in canonical form", i+1, m)
		}
		if seen[m] {
			return bad("members", "member %d: %s is listed twice", i+1, m)
		}
		seen[m] = true
		if account == "" {
			account = arn.AccountID
		} else if arn.AccountID != account {
			return bad("members", "member %d: every member must be in the same account (%s)", i+1, account)
		}
	}
	if pp.Name != "" && (len(pp.Name) > MaxPoolNameLength || !poolNameRE.MatchString(pp.Name)) {
		return bad("name", "invalid pool name %q: a letter or digit followed by at most %d letters, digits or +=,.@_-", pp.Name, MaxPoolNameLength-1)
	}
	if pp.Elastic == nil {
		return nil
	}
	e := pp.Elastic
	if pp.Name == "" {
		return bad("name", "an elastic pool needs a name (it names the members the broker creates)")
	}
	tmpl, err := ParseRoleARN(e.TemplateRoleARN)
	if err != nil {
		return bad("elastic.template_role_arn", "%s", err.Error())
	}
	if tmpl.AccountID != account {
		return bad("elastic.template_role_arn", "the template must be in the members' account (%s)", account)
	}
	if len(e.Path) > 512 || !elasticPathR.MatchString(e.Path) {
		return bad("elastic.path", "want a dedicated IAM path such as /irsa-pools/%s/ (not /)", pp.Name)
	}
	for i, m := range pp.Members {
		if arn, _ := ParseRoleARN(m); strings.HasPrefix(arn.Path, e.Path) {
			return bad("elastic.path", "static member %d is under the pool's path %s: the path holds only the members the broker creates", i+1, e.Path)
		}
	}
	if !policyARNRE.MatchString(e.PermissionsBoundaryARN) {
		return bad("elastic.permissions_boundary_arn", "want a managed policy ARN (arn:aws:iam::<account>:policy/<name>)")
	}
	if e.MaxMembers < 0 || e.MaxMembers > MaxElasticMembers {
		return bad("elastic.max_members", "must be between 1 and %d (0: %d)", MaxElasticMembers, DefaultElasticMaxMembers)
	}
	if e.EmptyGraceSeconds < 0 {
		return bad("elastic.empty_grace_seconds", "must not be negative (0: %d)", DefaultElasticEmptyGraceSeconds)
	}
	return nil
}

// ElasticMemberName is the role name of an elastic pool's member number n
// (1-based): "<pool>-<n, three digits at least>".
func ElasticMemberName(pool string, n int) string {
	return fmt.Sprintf("%s-%03d", pool, n)
}

// ParseElasticMemberName returns n for a role name ElasticMemberName(pool, n)
// made, and false for any other name.
func ParseElasticMemberName(pool, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, pool+"-")
	if !ok || len(rest) < 3 {
		return 0, false
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > MaxElasticMembers*10 {
			return 0, false
		}
	}
	if n == 0 || ElasticMemberName(pool, n) != name {
		return 0, false
	}
	return n, true
}

// PoolOf returns grant g with the proxy pool of the mapping pair it came
// from: policies see and return pairs without pools (proxy_iam_role_arn is
// the pool's first member), so the pool is looked up in the snapshot by org,
// asset role and first member. A grant no mapping pair matches is returned
// as it is (a pool of one).
func (s Snapshot) PoolOf(g Grant) Grant {
	if g.ProxyPool != nil {
		return g
	}
	for _, p := range s.Mappings[g.Org].Pairs {
		if p.ProxyPool != nil && p.IAMRoleARN == g.IAMRoleARN && p.ProxyIAMRoleARN == g.ProxyIAMRoleARN {
			g.ProxyPool = p.ProxyPool
			return g
		}
	}
	return g
}

// Pools lists the pairs of s whose trust policy the broker edits, one per
// distinct proxy side (pool or single role), sorted by pool name and first
// member. Their ProxyMembers are the static roles to sweep.
func (s Snapshot) Pools() []RolePair {
	seen := map[string]bool{}
	var out []RolePair
	for _, m := range s.Mappings {
		for _, p := range m.Pairs {
			if !p.UpdateTrustPolicy {
				continue
			}
			k := p.PoolKey()
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b RolePair) int {
		if c := strings.Compare(a.PoolName(), b.PoolName()); c != 0 {
			return c
		}
		return strings.Compare(a.ProxyIAMRoleARN, b.ProxyIAMRoleARN)
	})
	return out
}

// PoolKey identifies the pair's proxy side: two pairs with the same key place
// a subject alike (same members, same elasticity).
func (p RolePair) PoolKey() string {
	if p.ProxyPool == nil {
		return p.ProxyIAMRoleARN
	}
	var b strings.Builder
	b.WriteString(p.PoolName())
	for _, m := range p.ProxyPool.Members {
		b.WriteString("|" + m)
	}
	if e := p.ProxyPool.Elastic; e != nil {
		fmt.Fprintf(&b, "|elastic:%s|%s|%s|%d|%d", e.TemplateRoleARN, e.Path, e.PermissionsBoundaryARN, e.MaxMembers, e.EmptyGraceSeconds)
	}
	return b.String()
}

// RoleTrust is what one proxy role's trust policy holds as IAM has it.
type RoleTrust struct {
	Role     string
	Subjects []string
	// Size is the policy's length as IAM counts it; Quota the account's
	// AssumeRolePolicySizeQuota.
	Size, Quota int
}
