package model

import (
	"fmt"
	"regexp"
	"slices"
)

// RolePair is one org → role mapping: the asset role holds the permissions, the
// proxy role (in the cluster's account) is federated with the cluster's OIDC
// provider and may only assume the asset role. JSON names are the legacy ones.
type RolePair struct {
	IAMRoleARN        string `json:"iam_role_arn"`
	ProxyIAMRoleARN   string `json:"proxy_iam_role_arn"`
	UpdateTrustPolicy bool   `json:"update_iam_role_trust_policy"`
	// ProxyPool, when set, makes the proxy side a pool of roles whose first
	// member is ProxyIAMRoleARN (docs/design/pools.md). Nil for the legacy
	// single proxy role, whose JSON has no proxy_pool field.
	ProxyPool *ProxyPool `json:"proxy_pool,omitempty"`
}

// Mapping is everything one Domino organization maps to.
type Mapping struct {
	Org   string
	Pairs []RolePair
	// Multi is true for orgs written through update_multirole_mapping: they are
	// stored, and shown by the legacy GETs, as a list of pairs.
	Multi bool
}

// Snapshot is a consistent view of all mappings. Revision changes whenever any
// mapping does (ConfigMap resourceVersion, file content hash).
type Snapshot struct {
	Revision string
	Mappings map[string]Mapping
}

// ValidationError is a mapping that cannot be stored. Field is the legacy
// JSON name of what is wrong.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Classify implements Classified.
func (e *ValidationError) Classify() (Kind, string, string) {
	return KindInvalid, "invalid_mapping", e.Error()
}

// orgRE is the grammar accepted for Domino organization names. It is a subset
// of the ConfigMap key grammar ([-._a-zA-Z0-9]+), so every valid org can be
// stored as a key, and it excludes the IAM wildcard characters '*' and '?'.
var orgRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidateOrg checks that org is an acceptable organization name: a letter or
// digit followed by at most 99 letters, digits, '.', '_' or '-'.
func ValidateOrg(org string) error {
	if org == "" {
		return &ValidationError{Field: "domino_org", Message: "is required"}
	}
	if !orgRE.MatchString(org) {
		return &ValidationError{Field: "domino_org", Message: fmt.Sprintf(
			"invalid organization name %q: want a letter or digit followed by up to 99 letters, digits, '.', '_' or '-'", org)}
	}
	return nil
}

// Validate checks the org name, that there is at least one pair, and that
// both ARNs of every pair are IAM role ARNs. The error is a *ValidationError.
func (m Mapping) Validate() error {
	if err := ValidateOrg(m.Org); err != nil {
		return err
	}
	if len(m.Pairs) == 0 {
		return &ValidationError{Field: "role_data", Message: "at least one role pair is required"}
	}
	for i, p := range m.Pairs {
		if err := p.Validate(); err != nil {
			if ve, ok := err.(*ValidationError); ok && len(m.Pairs) > 1 {
				return &ValidationError{Field: ve.Field, Message: fmt.Sprintf("role pair %d: %s", i+1, ve.Message)}
			}
			return err
		}
	}
	return nil
}

// Validate checks both ARNs of p. The error is a *ValidationError naming the
// field ("iam_role_arn" or "proxy_iam_role_arn").
func (p RolePair) Validate() error {
	for _, f := range []struct{ name, arn string }{{"iam_role_arn", p.IAMRoleARN}, {"proxy_iam_role_arn", p.ProxyIAMRoleARN}} {
		if f.arn == "" {
			return &ValidationError{Field: f.name, Message: "is required"}
		}
		if _, err := ParseRoleARN(f.arn); err != nil {
			return &ValidationError{Field: f.name, Message: err.Error()}
		}
	}
	if p.ProxyPool != nil {
		return p.ProxyPool.validate(p.ProxyIAMRoleARN)
	}
	return nil
}

// Clone returns a deep copy of m (the Pairs slice is not shared).
func (m Mapping) Clone() Mapping {
	m.Pairs = append([]RolePair(nil), m.Pairs...)
	for i := range m.Pairs {
		m.Pairs[i].ProxyPool = m.Pairs[i].ProxyPool.Clone()
	}
	return m
}

// ProxyRolesToUpdate lists, sorted and without duplicates, the proxy roles
// whose trust policy the broker edits for the mappings of s.
func (s Snapshot) ProxyRolesToUpdate() []string {
	var pairs []RolePair
	for _, m := range s.Mappings {
		pairs = append(pairs, m.Pairs...)
	}
	return ProxyRolesToUpdate(pairs)
}

// ProxyRolesToUpdate lists, sorted and without duplicates, the proxy roles of
// pairs whose trust policy the broker edits (UpdateTrustPolicy set): every
// static member of a pool. (Members an elastic pool created are in IAM only.)
func ProxyRolesToUpdate(pairs []RolePair) []string {
	var out []string
	for _, p := range pairs {
		if p.UpdateTrustPolicy && p.ProxyIAMRoleARN != "" {
			out = append(out, p.ProxyMembers()...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
