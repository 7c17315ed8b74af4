package trust

import (
	"context"
	"slices"
	"testing"
)

// TestPoolsInspectReusesFreshDocuments: /v2/trust reads a member from the
// writer's last round while that document is fresh (no GetRole), and from
// IAM once it is older or a removal is pending.
func TestPoolsInspectReusesFreshDocuments(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w, clock, _ := cachedWriter(f)
	p := NewPools(PoolOptions{Writer: w, Fresh: testTTL})
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	gets, _ := f.counts()
	rt, err := p.Inspect(ctx, roleARN)
	if err != nil || !slices.Equal(rt.Subjects, []string{sa("run-1")}) || rt.Quota != 2048 || rt.Size == 0 {
		t.Fatalf("Inspect = %+v, %v", rt, err)
	}
	if g, _ := f.counts(); g != gets {
		t.Fatalf("Inspect of a fresh member made %d GetRole calls", g-gets)
	}
	clock.Advance(testTTL)
	if rt, err := p.Inspect(ctx, roleARN); err != nil || !slices.Equal(rt.Subjects, []string{sa("run-1")}) {
		t.Fatalf("Inspect = %+v, %v", rt, err)
	}
	if g, _ := f.counts(); g != gets+1 {
		t.Fatalf("Inspect of a stale member made %d GetRole calls, want 1", g-gets)
	}
}
