package mapping

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// MemoryStore keeps mappings in memory (tests, `irsa-broker dev --empty`).
// It is safe for concurrent use; Revision is a counter bumped by every change.
type MemoryStore struct {
	mu       sync.RWMutex
	rev      uint64
	mappings map[string]model.Mapping
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a store holding initial. It panics if one of them is
// invalid: seeds are program constants, so that is a programming error.
func NewMemoryStore(initial ...model.Mapping) *MemoryStore {
	s := &MemoryStore{rev: 1, mappings: make(map[string]model.Mapping, len(initial))}
	for _, m := range initial {
		if err := m.Validate(); err != nil {
			panic(fmt.Sprintf("mapping.NewMemoryStore: invalid seed %q: %v", m.Org, err))
		}
		s.mappings[m.Org] = m.Clone()
	}
	return s
}

// Snapshot returns a copy of all mappings.
func (s *MemoryStore) Snapshot(ctx context.Context) (model.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return model.Snapshot{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ms := cloneAll(s.mappings)
	model.DropPoolConflicts(ms) // as the other stores load them
	return model.Snapshot{Revision: strconv.FormatUint(s.rev, 10), Mappings: ms}, nil
}

// Put validates m and creates or replaces the mapping of m.Org.
func (s *MemoryStore) Put(ctx context.Context, m model.Mapping) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mappings[m.Org] = m.Clone()
	s.rev++
	return nil
}

// Delete removes org's mapping, or returns ErrNotFound.
func (s *MemoryStore) Delete(ctx context.Context, org string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mappings[org]; !ok {
		return notFound(org)
	}
	delete(s.mappings, org)
	s.rev++
	return nil
}

// Apply writes b under the store's lock: one revision for the whole batch.
func (s *MemoryStore) Apply(ctx context.Context, b model.Batch) (string, error) {
	if err := b.Validate(); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rev := strconv.FormatUint(s.rev, 10)
	if b.IfRevision != "" && b.IfRevision != rev {
		return "", model.StaleRevision(b.IfRevision, rev)
	}
	for _, org := range b.Delete {
		if _, ok := s.mappings[org]; !ok {
			return "", notFound(org)
		}
	}
	if b.Empty() {
		return rev, nil
	}
	for _, org := range b.Delete {
		delete(s.mappings, org)
	}
	for _, m := range b.Put {
		s.mappings[m.Org] = m.Clone()
	}
	s.rev++
	return strconv.FormatUint(s.rev, 10), nil
}

func cloneAll(in map[string]model.Mapping) map[string]model.Mapping {
	out := make(map[string]model.Mapping, len(in))
	for k, m := range in {
		out[k] = m.Clone()
	}
	return out
}
