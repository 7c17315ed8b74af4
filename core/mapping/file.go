package mapping

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/atomicfile"
)

// FileStore keeps mappings in a JSON file (dev mode): an object whose keys are
// orgs and whose values are the legacy mapping (a pair object or a list of
// them). A value may also be a JSON string holding that JSON, which is how
// `kubectl get configmap -o json` shows the ConfigMap's data, so such a dump
// can be used as is. Writes are atomic (temporary file + rename); the file is
// re-read on every Snapshot, so hand edits are picked up. Revision is a hash of
// the file's content. Entries that do not parse are logged, left out of
// snapshots, and preserved on write.
type FileStore struct {
	path string
	log  hclog.Logger

	mu    sync.Mutex // serializes writers
	cache parsedCache
}

var _ Store = (*FileStore)(nil)

// NewFileStore opens the store at path. A missing file is an empty store
// (created on the first Put); an existing file must be a JSON object.
func NewFileStore(path string, log hclog.Logger) (*FileStore, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &FileStore{path: path, log: log.Named("mapping-file").With("path", path)}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("mapping file %s: directory does not exist", path)
	}
	if _, _, err := s.readRaw(); err != nil {
		return nil, err
	}
	return s, nil
}

// readRaw returns the file's entries and its revision.
func (s *FileStore) readRaw() (map[string]json.RawMessage, string, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		data = nil
	} else if err != nil {
		return nil, "", fmt.Errorf("%w: read mapping file: %w", ErrUnavailable, err)
	}
	raw := map[string]json.RawMessage{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, "", fmt.Errorf("%w: mapping file %s is not a JSON object: %w", ErrUnavailable, s.path, err)
		}
	}
	return raw, revisionOf(data), nil
}

// revisionOf is the revision of a file's content.
func revisionOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

// Snapshot reads the file and returns its valid mappings.
func (s *FileStore) Snapshot(ctx context.Context) (model.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return model.Snapshot{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	raw, rev, err := s.readRaw()
	if err != nil {
		return model.Snapshot{}, err
	}
	values := make(map[string]string, len(raw))
	for org, v := range raw {
		values[org] = fileValue(v)
	}
	return s.cache.snapshot(rev, values, s.log), nil
}

// fileValue is an entry's legacy value: the file holds it as JSON, or as a
// JSON string holding JSON (a kubectl dump of the ConfigMap's data).
func fileValue(v json.RawMessage) string {
	var str string
	if err := json.Unmarshal(v, &str); err == nil {
		return str
	}
	return string(v)
}

// Put validates m and creates or replaces its org's entry.
func (s *FileStore) Put(ctx context.Context, m model.Mapping) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return s.update(ctx, func(raw map[string]json.RawMessage) error {
		raw[m.Org] = json.RawMessage(Value(m))
		return nil
	})
}

// Delete removes org's entry, or returns ErrNotFound.
func (s *FileStore) Delete(ctx context.Context, org string) error {
	return s.update(ctx, func(raw map[string]json.RawMessage) error {
		if _, ok := raw[org]; !ok {
			return notFound(org)
		}
		delete(raw, org)
		return nil
	})
}

// Apply checks b's revision and writes all its changes with one atomic
// rename, under the writers' lock.
func (s *FileStore) Apply(ctx context.Context, b model.Batch) (string, error) {
	if err := b.Validate(); err != nil {
		return "", err
	}
	values := make(map[string]string, len(b.Put))
	for _, m := range b.Put {
		values[m.Org] = Value(m)
	}
	var rev string
	err := s.updateRev(ctx, func(raw map[string]json.RawMessage, cur string) (bool, error) {
		if b.IfRevision != "" && b.IfRevision != cur {
			return false, model.StaleRevision(b.IfRevision, cur)
		}
		for _, org := range b.Delete {
			if _, ok := raw[org]; !ok {
				return false, notFound(org)
			}
		}
		if b.Empty() {
			rev = cur
			return false, nil
		}
		for _, org := range b.Delete {
			delete(raw, org)
		}
		for org, v := range values {
			raw[org] = json.RawMessage(v)
		}
		return true, nil
	}, &rev)
	return rev, err
}

func (s *FileStore) update(ctx context.Context, change func(map[string]json.RawMessage) error) error {
	return s.updateRev(ctx, func(raw map[string]json.RawMessage, _ string) (bool, error) {
		return true, change(raw)
	}, nil)
}

// updateRev reads the file under the writers' lock, calls change with its
// entries and revision, and writes the result atomically when change asks
// to. The new revision is stored in *rev when rev is not nil.
func (s *FileStore) updateRev(ctx context.Context, change func(raw map[string]json.RawMessage, rev string) (write bool, err error), rev *string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, cur, err := s.readRaw()
	if err != nil {
		return err
	}
	write, err := change(raw, cur)
	if err != nil || !write {
		return err
	}
	data, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return fmt.Errorf("encode mapping file: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.Write(ctx, s.path, data, 0o644); err != nil {
		return fmt.Errorf("%w: write mapping file: %w", ErrUnavailable, err)
	}
	if rev != nil {
		*rev = revisionOf(data)
	}
	return nil
}
