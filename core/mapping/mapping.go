package mapping

import (
	"context"
	"errors"
	"fmt"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// Store persists mappings.
type Store interface {
	Snapshot(ctx context.Context) (model.Snapshot, error)
	// Put creates or replaces the mapping of m.Org.
	Put(ctx context.Context, m model.Mapping) error
	// Delete removes org's mapping; ErrNotFound if there is none.
	Delete(ctx context.Context, org string) error
	// Apply writes every change of b in one step, or none: b is validated
	// first, a deleted org that has no mapping is ErrNotFound, and with
	// b.IfRevision set a store whose Snapshot revision differs refuses with
	// a KindPrecondition error. It returns the revision after the write.
	Apply(ctx context.Context, b model.Batch) (revision string, err error)
}

var (
	// ErrNotFound: no mapping for that org (the cause of notFound's errors).
	ErrNotFound = errors.New("mapping not found")
	// ErrUnavailable wraps failures of the backing store (API server down).
	ErrUnavailable = &model.Error{Kind: model.KindUnavailable, Code: "mapping_store_unavailable", Message: "the role-mapping store is unavailable"}
)

// notFound is the error of a Delete with nothing to delete.
func notFound(org string) error {
	return &model.Error{Kind: model.KindNotFound, Code: "mapping_not_found", Message: fmt.Sprintf("org %q: no mapping", org), Err: ErrNotFound}
}
