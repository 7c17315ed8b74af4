package model

import (
	"fmt"
	"slices"
	"strings"
)

// PoolConflict is a proxy side of one mapping that must not coexist with a
// proxy side of another (or of the same org, when the two pools differ):
// see "One pool, one owner" in docs/design/pools.md.
type PoolConflict struct {
	// Orgs are the two orgs involved (the same org twice when one mapping
	// conflicts with itself), sorted.
	Orgs [2]string
	// Field is the proxy_pool field of the conflict.
	Field   string
	Message string
}

func (c PoolConflict) Error() string { return c.Field + ": " + c.Message }

// Involves reports whether org is one of the conflict's orgs.
func (c PoolConflict) Involves(org string) bool { return c.Orgs[0] == org || c.Orgs[1] == org }

// poolClaim is one org's use of one pool.
type poolClaim struct {
	org, key, name, path string // path: the elastic path, "" for a static pool
}

// roleUse is one org's use of one proxy or template role.
type roleUse struct {
	org, arn, path string
}

// PoolConflicts finds the proxy sides of ms that could take each other's
// roles (docs/design/pools.md, "One pool, one owner"):
//
//   - two different pools (different orgs, or two different pools of one
//     org) with the same name (compared as IAM compares role names,
//     ignoring case): elastic members are named after their pool, role names
//     are unique in an account, and the tags name the pool;
//   - two different elastic pools whose paths are equal or nested: each
//     would list, fill and delete the other's members, and the asset role of
//     each trusts the whole path;
//   - a static member, single proxy role or template of any mapping under
//     any elastic pool's path: the pool would take it for a member, and the
//     asset roles trusting the path would trust it.
//
// One org's pairs sharing one pool (the same PoolKey) are one pool. The
// result is sorted by org.
func PoolConflicts(ms map[string]Mapping) []PoolConflict {
	orgs := make([]string, 0, len(ms))
	for org := range ms {
		orgs = append(orgs, org)
	}
	slices.Sort(orgs)
	var (
		claims []poolClaim
		roles  []roleUse
	)
	seen := map[[2]string]bool{}
	for _, org := range orgs {
		for _, p := range ms[org].Pairs {
			use := func(arn string) {
				if a, err := ParseRoleARN(arn); err == nil {
					roles = append(roles, roleUse{org, arn, a.Path})
				}
			}
			for _, m := range p.ProxyMembers() {
				use(m)
			}
			if p.ProxyPool == nil {
				continue
			}
			k := [2]string{org, p.PoolKey()}
			if seen[k] {
				continue
			}
			seen[k] = true
			c := poolClaim{org: org, key: k[1], name: p.PoolName()}
			if e := p.ProxyPool.Elastic; e != nil {
				c.path = e.Path
				use(e.TemplateRoleARN)
			}
			claims = append(claims, c)
		}
	}
	var out []PoolConflict
	add := func(a, b, field, format string, args ...any) {
		o := [2]string{a, b}
		slices.Sort(o[:])
		out = append(out, PoolConflict{Orgs: o, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for i, a := range claims {
		for _, b := range claims[i+1:] {
			switch {
			case strings.EqualFold(a.name, b.name):
				add(a.org, b.org, "proxy_pool.name", "pool name %q of org %q is also the name of a pool of org %q: every pool needs a name of its own", a.name, a.org, b.org)
			case a.path != "" && b.path != "" && (strings.HasPrefix(a.path, b.path) || strings.HasPrefix(b.path, a.path)):
				add(a.org, b.org, "proxy_pool.elastic.path", "the elastic path %s of pool %q (org %q) and %s of pool %q (org %q) are equal or nested: every elastic pool needs a path of its own", a.path, a.name, a.org, b.path, b.name, b.org)
			}
		}
	}
	for _, c := range claims {
		if c.path == "" {
			continue
		}
		for _, r := range roles {
			if strings.HasPrefix(r.path, c.path) {
				add(c.org, r.org, "proxy_pool.elastic.path", "role %s of org %q is under the elastic path %s of pool %q (org %q): the path holds only the members the broker creates", r.arn, r.org, c.path, c.name, c.org)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b PoolConflict) int {
		return strings.Compare(a.Orgs[0]+"\x00"+a.Orgs[1], b.Orgs[0]+"\x00"+b.Orgs[1])
	})
	return out
}

// DropPoolConflicts removes from ms every org involved in a conflict
// (PoolConflicts) and returns the conflicts. Which of two conflicting
// mappings was meant cannot be told, so neither is used: mappings written
// through the broker are checked before they are stored; this is for what
// reached the store around it.
func DropPoolConflicts(ms map[string]Mapping) []PoolConflict {
	cs := PoolConflicts(ms)
	for _, c := range cs {
		delete(ms, c.Orgs[0])
		delete(ms, c.Orgs[1])
	}
	return cs
}

// CheckPoolConflicts returns a *ValidationError for the first conflict
// (PoolConflicts) that involves one of orgs, in ms as it would be after the
// write.
func CheckPoolConflicts(ms map[string]Mapping, orgs ...string) error {
	for _, c := range PoolConflicts(ms) {
		if slices.ContainsFunc(orgs, c.Involves) {
			return &ValidationError{Field: c.Field, Message: c.Message}
		}
	}
	return nil
}
