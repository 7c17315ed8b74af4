package mapping

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// testStore is the conformance suite every Store implementation runs.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	acme := model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}
	multi := model.Mapping{Org: "multi.org", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}, {IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: true}}}

	t.Run("empty", func(t *testing.T) {
		s := newStore(t)
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Mappings) != 0 || snap.Revision == "" {
			t.Fatalf("empty store snapshot = %+v", snap)
		}
	})

	t.Run("put, read back, replace, delete", func(t *testing.T) {
		s := newStore(t)
		s0 := mustSnap(t, s)
		if err := s.Put(ctx, acme); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, multi); err != nil {
			t.Fatal(err)
		}
		s1 := mustSnap(t, s)
		if s1.Revision == s0.Revision {
			t.Fatalf("revision unchanged after Put: %q", s1.Revision)
		}
		want := map[string]model.Mapping{"acme": acme, "multi.org": multi}
		if !reflect.DeepEqual(s1.Mappings, want) {
			t.Fatalf("mappings = %+v, want %+v", s1.Mappings, want)
		}
		// Unchanged store: same revision.
		if again := mustSnap(t, s); again.Revision != s1.Revision {
			t.Fatalf("revision changed without a write: %q -> %q", s1.Revision, again.Revision)
		}
		// Snapshots are copies.
		s1.Mappings["acme"].Pairs[0].IAMRoleARN = "mutated"
		if got := mustSnap(t, s).Mappings["acme"]; !reflect.DeepEqual(got, acme) {
			t.Fatalf("mutating a snapshot changed the store: %+v", got)
		}
		// Replace.
		acme2 := model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: false}}}
		if err := s.Put(ctx, acme2); err != nil {
			t.Fatal(err)
		}
		if got := mustSnap(t, s).Mappings["acme"]; !reflect.DeepEqual(got, acme2) {
			t.Fatalf("after replace: %+v, want %+v", got, acme2)
		}
		// Delete.
		if err := s.Delete(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		s2 := mustSnap(t, s)
		if _, ok := s2.Mappings["acme"]; ok || len(s2.Mappings) != 1 {
			t.Fatalf("after delete: %+v", s2.Mappings)
		}
		if err := s.Delete(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("invalid put changes nothing", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, acme); err != nil {
			t.Fatal(err)
		}
		before := mustSnap(t, s)
		for _, bad := range []model.Mapping{
			{Org: "ac*me", Pairs: acme.Pairs},
			{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: "arn:aws:iam::1:role/x", ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}},
			{Org: "acme"},
		} {
			var ve *model.ValidationError
			if err := s.Put(ctx, bad); !errors.As(err, &ve) {
				t.Fatalf("Put(%+v) = %v, want *ValidationError", bad, err)
			}
		}
		after := mustSnap(t, s)
		if after.Revision != before.Revision || !reflect.DeepEqual(after.Mappings, before.Mappings) {
			t.Fatalf("invalid puts changed the store: %+v -> %+v", before, after)
		}
	})

	t.Run("delete missing", func(t *testing.T) {
		s := newStore(t)
		if err := s.Delete(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Delete = %v, want ErrNotFound", err)
		}
	})

	t.Run("batch", func(t *testing.T) {
		testBatch(t, newStore(t), acme, multi)
	})

	t.Run("concurrent puts on different orgs all survive", func(t *testing.T) {
		s := newStore(t)
		const writers, each = 2, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					m := model.Mapping{Org: fmt.Sprintf("org-%d-%d", w, i), Pairs: acme.Pairs}
					if err := s.Put(ctx, m); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := len(mustSnap(t, s).Mappings); got != writers*each {
			t.Fatalf("%d mappings survived, want %d", got, writers*each)
		}
	})
}

// testBatch: Apply writes a whole batch with one revision, or nothing.
func testBatch(t *testing.T, s Store, acme, multi model.Mapping) {
	ctx := context.Background()
	if err := s.Put(ctx, acme); err != nil {
		t.Fatal(err)
	}
	s0 := mustSnap(t, s)
	two := model.Mapping{Org: "two", Pairs: multi.Pairs, Multi: true}
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		if after := mustSnap(t, s); after.Revision != s0.Revision || !reflect.DeepEqual(after.Mappings, s0.Mappings) {
			t.Fatalf("%s changed the store: %+v -> %+v", what, s0, after)
		}
	}
	kind := func(err error) model.Kind { k, _, _ := model.Classify(err); return k }

	// Refused batches write nothing, not even their valid parts.
	for _, tc := range []struct {
		name string
		b    model.Batch
		want model.Kind
		text string
	}{
		{"stale revision", model.Batch{Put: []model.Mapping{multi}, IfRevision: s0.Revision + "0"}, model.KindPrecondition, "revision"},
		{"delete of a missing org", model.Batch{Put: []model.Mapping{multi}, Delete: []string{"nobody"}}, model.KindNotFound, "nobody"},
		{"invalid mapping", model.Batch{Put: []model.Mapping{multi, {Org: "bad", Pairs: []model.RolePair{{IAMRoleARN: "x", ProxyIAMRoleARN: proxyARN}}}}}, model.KindInvalid, `org "bad"`},
		{"org twice", model.Batch{Put: []model.Mapping{multi}, Delete: []string{multi.Org}}, model.KindInvalid, multi.Org},
	} {
		rev, err := s.Apply(ctx, tc.b)
		if err == nil || kind(err) != tc.want || !strings.Contains(err.Error(), tc.text) || rev != "" {
			t.Fatalf("%s: Apply = %q, %v; want a %v error naming %q", tc.name, rev, err, tc.want, tc.text)
		}
		unchanged(t, tc.name)
	}
	if _, err := s.Apply(ctx, model.Batch{Delete: []string{"nobody"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a missing org: %v, want ErrNotFound", err)
	}
	// An empty batch at the current revision writes nothing.
	if rev, err := s.Apply(ctx, model.Batch{IfRevision: s0.Revision}); err != nil || rev != s0.Revision {
		t.Fatalf("empty batch: %q, %v; want %q", rev, err, s0.Revision)
	}
	unchanged(t, "an empty batch")

	// Puts and deletes at the read revision: one new revision, all applied.
	rev, err := s.Apply(ctx, model.Batch{Put: []model.Mapping{multi, two}, Delete: []string{"acme"}, IfRevision: s0.Revision})
	if err != nil {
		t.Fatal(err)
	}
	s1 := mustSnap(t, s)
	want := map[string]model.Mapping{"multi.org": multi, "two": two}
	if rev == s0.Revision || rev != s1.Revision || !reflect.DeepEqual(s1.Mappings, want) {
		t.Fatalf("after the batch: revision %q (snapshot %q, before %q), mappings %+v, want %+v", rev, s1.Revision, s0.Revision, s1.Mappings, want)
	}
	// The revision read before the batch is stale now.
	if _, err := s.Apply(ctx, model.Batch{Delete: []string{"two"}, IfRevision: s0.Revision}); kind(err) != model.KindPrecondition {
		t.Fatalf("the old revision: %v, want a precondition error", err)
	}
	// Without IfRevision a batch applies to whatever is there.
	if _, err := s.Apply(ctx, model.Batch{Put: []model.Mapping{acme}, Delete: []string{"two"}}); err != nil {
		t.Fatal(err)
	}
	if got := mustSnap(t, s).Mappings; !reflect.DeepEqual(got, map[string]model.Mapping{"multi.org": multi, "acme": acme}) {
		t.Fatalf("after the unconditional batch: %+v", got)
	}
}

func mustSnap(t *testing.T, s Store) model.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return snap
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(*testing.T) Store { return NewMemoryStore() })
}

func TestMemoryStoreSeedsAndPanics(t *testing.T) {
	m := model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}
	if got := mustSnap(t, NewMemoryStore(m)).Mappings; !reflect.DeepEqual(got, map[string]model.Mapping{"acme": m}) {
		t.Fatalf("seeded = %+v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("invalid seed did not panic")
		}
	}()
	NewMemoryStore(model.Mapping{Org: "bad*"})
}
