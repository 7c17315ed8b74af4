package mapping

import (
	"context"
	"errors"
)

// RolePair is one org → role mapping: the asset role holds the permissions, the
// proxy role (in the cluster's account) is federated with the cluster's OIDC
// provider and may only assume the asset role. JSON names are the legacy ones.
type RolePair struct {
	IAMRoleARN        string `json:"iam_role_arn"`
	ProxyIAMRoleARN   string `json:"proxy_iam_role_arn"`
	UpdateTrustPolicy bool   `json:"update_iam_role_trust_policy"`
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

// Store persists mappings.
type Store interface {
	Snapshot(ctx context.Context) (Snapshot, error)
	// Put creates or replaces the mapping of m.Org.
	Put(ctx context.Context, m Mapping) error
	// Delete removes org's mapping; ErrNotFound if there is none.
	Delete(ctx context.Context, org string) error
}

var (
	// ErrNotFound: no mapping for that org.
	ErrNotFound = errors.New("mapping not found")
	// ErrUnavailable wraps failures of the backing store (API server down).
	ErrUnavailable = errors.New("mapping store unavailable")
)

// ValidationError says which field of a mapping is invalid.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }
