package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

func TestFileStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		s, err := NewFileStore(filepath.Join(t.TempDir(), "mappings.json"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileStoreFormatAndAtomicity(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "mappings.json")
	// A hand-written file: a kubectl-style string value, a nested list with a
	// string flag, and an invalid entry that must be skipped and preserved.
	initial := `{
  "acme": "{\"iam_role_arn\": \"` + assetARN + `\", \"proxy_iam_role_arn\": \"` + proxyARN + `\"}",
  "multi": [{"iam_role_arn": "` + asset2 + `", "proxy_iam_role_arn": "` + proxy2 + `", "update_iam_role_trust_policy": "FALSE"}],
  "broken": {"iam_role_arn": "nope"}
}`
	if err := os.WriteFile(path, []byte(initial), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewFileStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := mustSnap(t, s)
	want := map[string]model.Mapping{
		"acme":  {Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}},
		"multi": {Org: "multi", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: false}}},
	}
	if !reflect.DeepEqual(snap.Mappings, want) {
		t.Fatalf("mappings = %+v, want %+v", snap.Mappings, want)
	}

	if err := s.Put(ctx, model.Mapping{Org: "new", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}}}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("file is not JSON after Put: %v\n%s", err, data)
	}
	if _, ok := raw["broken"]; !ok {
		t.Fatalf("invalid entry was dropped on write:\n%s", data)
	}
	var newVal model.RolePair
	if err := json.Unmarshal(raw["new"], &newVal); err != nil || newVal != (model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}) {
		t.Fatalf("new entry = %s (%v), want the legacy object", raw["new"], err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	// A hand edit is picked up, with a new revision.
	before := mustSnap(t, s).Revision
	if err := os.WriteFile(path, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	after := mustSnap(t, s)
	if after.Revision == before || len(after.Mappings) != 0 {
		t.Fatalf("hand edit not seen: rev %q -> %q, %d mappings", before, after.Revision, len(after.Mappings))
	}

	// A corrupted file makes the store unavailable (not silently empty).
	if err := os.WriteFile(path, []byte(`{not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Snapshot of corrupted file = %v, want ErrUnavailable", err)
	}
	if _, err := NewFileStore(path, nil); err == nil {
		t.Fatal("NewFileStore accepted a corrupted file")
	}
	if _, err := NewFileStore(filepath.Join(dir, "missing-dir", "m.json"), nil); err == nil {
		t.Fatal("NewFileStore accepted a missing directory")
	}
}
