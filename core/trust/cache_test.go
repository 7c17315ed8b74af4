package trust

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is the writer's clock in these tests: it stands still until the
// test moves it.
type fakeClock struct{ offset atomic.Int64 }

var clockBase = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return clockBase.Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

const testTTL = 30 * time.Second

func cachedWriter(f *fakeIAM) (*Writer, *fakeClock, *prometheus.Registry) {
	clock := &fakeClock{}
	reg := prometheus.NewRegistry()
	return NewWriter(f, WriterOptions{OIDCProvider: testProvider, CacheTTL: testTTL, Now: clock.Now, Registerer: reg}), clock, reg
}

func cacheLookups(t *testing.T, w *Writer, result string) int {
	t.Helper()
	var m dto.Metric
	if err := w.m.cache.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return int(m.GetCounter().GetValue())
}

// TestWriterEnsureAnswersFromKnownDocument: a subject the last round left in
// the policy costs no IAM call while that document is younger than the TTL;
// an older one, or a subject it lacks, goes through a round.
func TestWriterEnsureAnswersFromKnownDocument(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w, clock, _ := cachedWriter(f)

	if err := w.Ensure(ctx, roleARN, sa("run-1"), sa("run-2")); err != nil {
		t.Fatal(err)
	}
	gets, updates := f.counts()
	for range 5 {
		added, err := w.EnsureAdded(ctx, roleARN, sa("run-1"))
		if err != nil || added {
			t.Fatalf("cached Ensure: added %v, %v", added, err)
		}
	}
	// The legacy form of a granted service account is granted too (StringLike).
	if err := w.Ensure(ctx, roleARN, "*:domino-compute:run-2"); err != nil {
		t.Fatal(err)
	}
	if g, u := f.counts(); g != gets || u != updates {
		t.Fatalf("answered from the known document, yet IAM was called: %d→%d gets, %d→%d updates", gets, g, updates, u)
	}
	if hits := cacheLookups(t, w, "hit"); hits != 6 {
		t.Fatalf("%d cache hits, want 6", hits)
	}

	// A subject the document lacks needs a round; its write refreshes the document.
	if err := w.Ensure(ctx, roleARN, sa("run-3")); err != nil {
		t.Fatal(err)
	}
	if g, u := f.counts(); g != gets+1 || u != updates+1 {
		t.Fatalf("new subject: %d gets, %d updates", g-gets, u-updates)
	}
	if err := w.Ensure(ctx, roleARN, sa("run-3")); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.counts(); g != gets+1 {
		t.Fatal("the written document was not remembered")
	}

	// Just under the TTL the document still answers; at the TTL it does not.
	clock.Advance(testTTL - time.Millisecond)
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.counts(); g != gets+1 {
		t.Fatal("a document younger than the TTL was not used")
	}
	clock.Advance(time.Millisecond)
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if g, u := f.counts(); g != gets+2 || u != updates+1 {
		t.Fatalf("stale document: %d gets, %d updates (want a read and no write)", g-gets, u-updates)
	}
	if n := cacheLookups(t, w, "stale"); n != 1 {
		t.Fatalf("%d stale lookups, want 1", n)
	}
}

// TestWriterRepairsOutsideEditsWithinTTL: an edit made outside the broker is
// seen at most a TTL later, and the next map of the subject it dropped puts
// the subject back.
func TestWriterRepairsOutsideEditsWithinTTL(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w, clock, _ := cachedWriter(f)
	if err := w.Ensure(ctx, roleARN, sa("run-1"), sa("run-2")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.docs[roleName] = managedDoc(sa("run-2")) // an admin drops run-1 by hand
	f.mu.Unlock()

	// Within the TTL the writer answers from what it wrote (the documented window).
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if got := f.subjects(t); slices.Contains(got, sa("run-1")) {
		t.Fatalf("test setup: run-1 back before the TTL: %q", got)
	}
	clock.Advance(testTTL)
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if got := f.subjects(t); !slices.Equal(got, []string{sa("run-2"), sa("run-1")}) {
		t.Fatalf("after the TTL, run-1 was not repaired: %q", got)
	}

	// A round for another subject also refreshes the document: run-2, dropped
	// outside, is then seen missing at once.
	f.mu.Lock()
	f.docs[roleName] = managedDoc(sa("run-1"))
	f.mu.Unlock()
	if err := w.Ensure(ctx, roleARN, sa("run-3")); err != nil {
		t.Fatal(err)
	}
	if err := w.Ensure(ctx, roleARN, sa("run-2")); err != nil {
		t.Fatal(err)
	}
	if got := f.subjects(t); !slices.Equal(got, []string{sa("run-1"), sa("run-3"), sa("run-2")}) {
		t.Fatalf("subjects %q", got)
	}
}

// TestWriterFailedRoundForgetsDocument: after a failed round (write refused,
// role gone), Ensure does not answer from what the writer knew before.
func TestWriterFailedRoundForgetsDocument(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w, _, _ := cachedWriter(f)
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.updateErr = errors.New("throttled")
	f.mu.Unlock()
	if err := w.Ensure(ctx, roleARN, sa("run-2")); err == nil {
		t.Fatal("failed write reported success")
	}
	f.mu.Lock()
	f.updateErr = nil
	f.mu.Unlock()
	gets, _ := f.counts()
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.counts(); g != gets+1 {
		t.Fatal("answered from the document of before a failed write")
	}

	// The role disappears from IAM: the round that notices fails, and so
	// does every later Ensure until IAM has the role again.
	f.mu.Lock()
	delete(f.docs, roleName)
	f.mu.Unlock()
	if err := w.Ensure(ctx, roleARN, sa("run-2")); err == nil {
		t.Fatal("Ensure on a deleted role succeeded")
	}
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err == nil {
		t.Fatal("Ensure answered from the document of a deleted role")
	}
}

// TestWriterRemoveAlwaysRounds: Remove reads IAM even for a subject the
// known document lacks, and an Ensure arriving while a Remove of the role is
// pending waits for it (so the later request wins, as without the cache).
func TestWriterRemoveAlwaysRounds(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w, _, _ := cachedWriter(f)
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	gets, _ := f.counts()
	if err := w.Remove(ctx, roleARN, sa("run-9")); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.counts(); g != gets+1 {
		t.Fatal("Remove did not read IAM")
	}

	// Hold the Remove's round at its GetRole, then Ensure the same subject.
	hold, entered := make(chan struct{}), make(chan struct{}, 8)
	f.mu.Lock()
	f.hold, f.entered = hold, entered
	f.mu.Unlock()
	removed := make(chan error, 1)
	go func() { removed <- w.Remove(ctx, roleARN, sa("run-1")) }()
	<-entered
	ensured := make(chan error, 1)
	go func() { ensured <- w.Ensure(ctx, roleARN, sa("run-1")) }()
	// The Ensure waits for a round instead of answering.
	polltest.Until(t, "the Ensure queued behind the Remove", func() bool {
		if len(ensured) > 0 {
			t.Fatal("Ensure answered while a Remove of its subject was pending")
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		q := w.queues[roleARN]
		return q != nil && len(q.pending) == 1
	})
	if n := cacheLookups(t, w, "removing"); n != 1 {
		t.Fatalf("%d lookups while removing, want 1", n)
	}
	close(hold)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if err := <-ensured; err != nil {
		t.Fatal(err)
	}
	if got := f.subjects(t); !slices.Equal(got, []string{sa("run-1")}) {
		t.Fatalf("the Ensure that came after the Remove lost: %q", got)
	}
	// Once answered, the Remove no longer blocks the cache.
	gets, _ = f.counts()
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.counts(); g != gets {
		t.Fatal("the cache stayed off after the Remove was answered")
	}
}

// TestWriterCacheOff: with CacheTTL 0 every Ensure does a round.
func TestWriterCacheOff(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	for range 3 {
		if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
			t.Fatal(err)
		}
	}
	if g, u := f.counts(); g != 3 || u != 1 {
		t.Fatalf("%d gets, %d updates; want 3 and 1", g, u)
	}
}

// TestWriterCacheConcurrent runs cached Ensures beside rounds of the same
// role (for the race detector) and checks that nothing is lost.
func TestWriterCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	f.quota = 1 << 20
	w, _, _ := cachedWriter(f)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Ensure(ctx, roleARN, sa("run-"+string(rune('a'+i%20))))
			if i%50 == 0 {
				_ = w.Remove(ctx, roleARN, sa("gone"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.subjects(t); len(got) != 20 {
		t.Fatalf("%d subjects, want 20: %q", len(got), got)
	}
}

// TestWriterPerRoleMetrics: a round publishes the role's subjects, size,
// quota and fill ratio.
func TestWriterPerRoleMetrics(t *testing.T) {
	f := newFakeIAM(managedDoc(""))
	w, _, reg := cachedWriter(f)
	if err := w.Ensure(context.Background(), roleARN, sa("run-1"), sa("run-2")); err != nil {
		t.Fatal(err)
	}
	size, _ := PolicySize(f.docs[roleName])
	for name, want := range map[string]float64{
		"irsa_trust_policy_subjects":         2,
		"irsa_trust_policy_size_characters":  float64(size),
		"irsa_trust_policy_quota_characters": 2048,
		"irsa_trust_policy_fill_ratio":       float64(size) / 2048,
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == roleARN && m.GetGauge().GetValue() == want {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s{role=%q} is not %v", name, roleARN, want)
		}
	}
}
