package mapping

import (
	"fmt"
	"regexp"

	"github.com/irsa-broker/irsa-broker/core/model"
)

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
	if p.IAMRoleARN == "" {
		return &ValidationError{Field: "iam_role_arn", Message: "is required"}
	}
	if _, err := model.ParseRoleARN(p.IAMRoleARN); err != nil {
		return &ValidationError{Field: "iam_role_arn", Message: err.Error()}
	}
	if p.ProxyIAMRoleARN == "" {
		return &ValidationError{Field: "proxy_iam_role_arn", Message: "is required"}
	}
	if _, err := model.ParseRoleARN(p.ProxyIAMRoleARN); err != nil {
		return &ValidationError{Field: "proxy_iam_role_arn", Message: err.Error()}
	}
	return nil
}

// Clone returns a deep copy of m (the Pairs slice is not shared).
func (m Mapping) Clone() Mapping {
	m.Pairs = append([]RolePair(nil), m.Pairs...)
	return m
}
