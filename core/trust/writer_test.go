package trust

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	roleName = "acme-proxy"
	roleARN  = "arn:aws:iam::946429944765:role/" + roleName
)

func managedDoc(subs ...string) string {
	q := make([]string, len(subs))
	for i, s := range subs {
		q[i] = `"` + s + `"`
	}
	return `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"Ec2","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},` +
		`{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::946429944765:oidc-provider/` + testProvider + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"` + testProvider + `:sub":[` + strings.Join(q, ",") + `]}}}]}`
}

// fakeIAM is an in-memory IAM for the writer's interface.
type fakeIAM struct {
	mu        sync.Mutex
	docs      map[string]string
	quota     int
	gets      int
	updates   int
	updateErr error
	quotaErr  error
	// hold, when set, blocks GetRole until it is closed; entered is
	// signalled each time a GetRole starts.
	hold    chan struct{}
	entered chan struct{}
}

func newFakeIAM(doc string) *fakeIAM {
	return &fakeIAM{docs: map[string]string{roleName: doc}, quota: 2048}
}

// GetRole answers as IAM does: roles are found by name in the caller's
// account (946429944765 here), whatever account or path the caller believes.
func (f *fakeIAM) GetRole(ctx context.Context, name string) (iam.Role, error) {
	f.mu.Lock()
	f.gets++
	hold, entered := f.hold, f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return iam.Role{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.docs[name]
	if !ok {
		return iam.Role{}, &iam.Error{Kind: iam.KindNoSuchEntity, Action: "iam:GetRole", Role: name, Code: "NoSuchEntity"}
	}
	return iam.Role{ARN: "arn:aws:iam::946429944765:role/" + name, Name: name, Path: "/", TrustPolicy: d}, nil
}

func (f *fakeIAM) UpdateTrustPolicy(_ context.Context, name, doc string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	if f.updateErr != nil {
		return f.updateErr
	}
	if n, err := PolicySize(doc); err != nil || n > f.quota {
		return &iam.Error{Kind: iam.KindLimitExceeded, Action: "iam:UpdateAssumeRolePolicy", Role: name, Code: "LimitExceeded"}
	}
	f.docs[name] = doc
	return nil
}

func (f *fakeIAM) TrustPolicySizeQuota(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.quota, f.quotaErr
}

func (f *fakeIAM) counts() (gets, updates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.updates
}

func (f *fakeIAM) subjects(t *testing.T) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := Parse(f.docs[roleName], testProvider)
	if err != nil {
		t.Fatal(err)
	}
	return d.Subjects()
}

func TestWriterEnsureRemove(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w := NewWriter(f, WriterOptions{OIDCProvider: "https://" + testProvider})

	if err := w.Ensure(ctx, roleARN, sa("run-1"), sa("run-2")); err != nil {
		t.Fatal(err)
	}
	if got, want := f.subjects(t), []string{sa("run-1"), sa("run-2")}; !slices.Equal(got, want) {
		t.Fatalf("subjects %q, want %q", got, want)
	}
	got, err := w.Subjects(ctx, roleARN)
	if err != nil || !slices.Equal(got, []string{sa("run-1"), sa("run-2")}) {
		t.Fatalf("Subjects = %q, %v", got, err)
	}
	_, updates := f.counts()

	// Already there: read, but no write.
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if _, u := f.counts(); u != updates {
		t.Fatalf("no-op Ensure wrote the policy (%d → %d updates)", updates, u)
	}

	if err := w.Remove(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	if got := f.subjects(t); !slices.Equal(got, []string{sa("run-2")}) {
		t.Fatalf("after Remove: %q", got)
	}
	if err := w.Remove(ctx, roleARN, sa("run-2")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.docs[roleName], `:sub":[""]`) {
		t.Fatalf("last removal must leave the placeholder: %s", f.docs[roleName])
	}
	if !strings.Contains(f.docs[roleName], `"Sid":"Ec2"`) {
		t.Fatalf("foreign statement lost: %s", f.docs[roleName])
	}
}

func TestWriterRejectsBadInputWithoutCallingIAM(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc())
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	for _, tc := range []struct {
		arn, subject string
	}{
		{"arn:aws:iam::946429944765:user/bob", sa("run-1")},
		{"not-an-arn", sa("run-1")},
		{roleARN, "system:serviceaccount:domino-compute:*"},
		{roleARN, "system:serviceaccount:domino-compute:run?"},
		{roleARN, "arn:aws:iam::1:root"},
		{roleARN, "system:serviceaccount:Domino:x"},
	} {
		if err := w.Ensure(ctx, tc.arn, tc.subject); err == nil {
			t.Errorf("Ensure(%q, %q) succeeded", tc.arn, tc.subject)
		}
		if err := w.Remove(ctx, tc.arn, tc.subject); err == nil {
			t.Errorf("Remove(%q, %q) succeeded", tc.arn, tc.subject)
		}
	}
	if g, u := f.counts(); g+u != 0 {
		t.Fatalf("IAM called for invalid input: %d gets, %d updates", g, u)
	}
	if err := NewWriter(f, WriterOptions{}).Ensure(ctx, roleARN, sa("run-1")); err == nil {
		t.Fatal("a writer without OIDC provider accepted a request")
	}
}

// waitQueued waits until n requests wait for the next round of role.
func waitQueued(t *testing.T, w *Writer, role string, n int) {
	t.Helper()
	polltest.Until(t, fmt.Sprintf("%d requests queued for %s", n, role), func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		got := 0
		if q := w.queues[role]; q != nil {
			got = len(q.pending)
		}
		return got >= n
	})
}

func TestWriterCoalescesConcurrentRequests(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(sa("old-1"), sa("old-2")))
	f.hold, f.entered = make(chan struct{}), make(chan struct{}, 10)
	reg := prometheus.NewPedanticRegistry()
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider, Registerer: reg})

	errs := make(chan error, 100)
	go func() { errs <- w.Ensure(ctx, roleARN, sa("first")) }()
	<-f.entered // round 1 is reading the policy; everything below queues

	const n = 60
	for i := range n {
		go func() {
			switch i % 3 {
			case 0, 1:
				errs <- w.Ensure(ctx, roleARN, sa(fmt.Sprintf("run-%d", i)))
			default:
				errs <- w.Remove(ctx, roleARN, sa("old-1"), sa(fmt.Sprintf("run-%d", i-1)))
			}
		}()
	}
	waitQueued(t, w, roleARN, n)
	close(f.hold)
	for range n + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if g, u := f.counts(); g != 2 || u != 2 {
		t.Fatalf("%d gets and %d updates for %d requests, want 2 and 2 (one round each)", g, u, n+1)
	}
	got := f.subjects(t)
	want := []string{sa("old-2"), sa("first")}
	for i := range n {
		// Goroutines i%3==2 remove the subject of i-1, which may have
		// queued before or after them; the i%3==0 ones must all be there.
		if i%3 == 0 {
			want = append(want, sa(fmt.Sprintf("run-%d", i)))
		}
	}
	for _, s := range want {
		if !slices.Contains(got, s) {
			t.Errorf("subject %s lost; have %q", s, got)
		}
	}
	if slices.Contains(got, sa("old-1")) {
		t.Errorf("old-1 not removed")
	}
	if c := metricValue(t, w.m.rounds.WithLabelValues("written")); c != 2 {
		t.Errorf("rounds{written} = %v, want 2", c)
	}
	wantFill := float64(len(f.docs[roleName])) / 2048
	if got := metricValue(t, w.m.fill.WithLabelValues(roleARN)); got != wantFill {
		t.Errorf("fill ratio %v, want %v", got, wantFill)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestWriterBatchOrder(t *testing.T) {
	// Within one round, requests apply in arrival order.
	ctx := context.Background()
	f := newFakeIAM(managedDoc())
	f.hold, f.entered = make(chan struct{}), make(chan struct{}, 10)
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	errs := make(chan error, 10)
	go func() { errs <- w.Ensure(ctx, roleARN, sa("x")) }()
	<-f.entered
	go func() { errs <- w.Ensure(ctx, roleARN, sa("a")) }()
	waitQueued(t, w, roleARN, 1)
	go func() { errs <- w.Remove(ctx, roleARN, sa("a")) }()
	waitQueued(t, w, roleARN, 2)
	go func() { errs <- w.Ensure(ctx, roleARN, sa("b")) }()
	waitQueued(t, w, roleARN, 3)
	close(f.hold)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.subjects(t); !slices.Equal(got, []string{sa("x"), sa("b")}) {
		t.Fatalf("subjects %q", got)
	}
}

func TestWriterBatchErrorReachesEveryCaller(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc())
	f.updateErr = &iam.Error{Kind: iam.KindAccessDenied, Action: "iam:UpdateAssumeRolePolicy", Role: roleName,
		Code: "AccessDenied", Message: "not authorized"}
	f.hold, f.entered = make(chan struct{}), make(chan struct{}, 10)
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	errs := make(chan error, 10)
	go func() { errs <- w.Ensure(ctx, roleARN, sa("a")) }()
	<-f.entered
	for i := range 5 {
		go func() { errs <- w.Ensure(ctx, roleARN, sa(fmt.Sprintf("b-%d", i))) }()
	}
	waitQueued(t, w, roleARN, 5)
	close(f.hold)
	for range 6 {
		err := <-errs
		var ie *iam.Error
		if !errors.As(err, &ie) || ie.Kind != iam.KindAccessDenied {
			t.Fatalf("got %v, want the batch's AccessDenied", err)
		}
		if !strings.Contains(err.Error(), roleARN) {
			t.Errorf("error does not name the role: %v", err)
		}
	}
	if _, u := f.counts(); u != 2 {
		t.Fatalf("%d updates, want 2 rounds", u)
	}
}

func TestWriterNoManagedStatement(t *testing.T) {
	f := newFakeIAM(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	err := w.Ensure(context.Background(), roleARN, sa("a"))
	var nm *NoManagedStatementError
	if !errors.As(err, &nm) || !errors.Is(err, ErrNoManagedStatement) || nm.Role != roleARN {
		t.Fatalf("got %v, want NoManagedStatementError for %s", err, roleARN)
	}
	if !strings.Contains(err.Error(), roleARN) || !strings.Contains(err.Error(), testProvider) {
		t.Errorf("message should name role and provider: %v", err)
	}
	if _, err := w.Subjects(context.Background(), roleARN); !errors.Is(err, ErrNoManagedStatement) {
		t.Fatalf("Subjects: %v", err)
	}
	if _, u := f.counts(); u != 0 {
		t.Fatal("wrote a policy without managed statement")
	}
}

func TestWriterLegacySubjects(t *testing.T) {
	f := newFakeIAM(managedDoc(subject("domino-compute", "old", true)))
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	ctx := context.Background()
	// The broker renders subjects in the configured form; the writer writes them as given.
	if err := w.Ensure(ctx, roleARN, subject("domino-compute", "new", true)); err != nil {
		t.Fatal(err)
	}
	// The exact subject of a legacy entry counts as present: no write.
	_, u := f.counts()
	if err := w.Ensure(ctx, roleARN, sa("old")); err != nil {
		t.Fatal(err)
	}
	if _, u2 := f.counts(); u2 != u {
		t.Fatal("legacy entry not recognised")
	}
	want := []string{subject("domino-compute", "old", true), subject("domino-compute", "new", true)}
	if got := f.subjects(t); !slices.Equal(got, want) {
		t.Fatalf("subjects %q, want %q", got, want)
	}
	// Removing the exact subject prunes the legacy pattern.
	if err := w.Remove(ctx, roleARN, sa("old")); err != nil {
		t.Fatal(err)
	}
	if got := f.subjects(t); !slices.Equal(got, want[1:]) {
		t.Fatalf("after remove: %q", got)
	}
}

// subjectLen is what one more subject adds to a list: quotes and a comma.
func subjectLen(s string) int { return len(s) + 3 }

func TestWriterSizeQuota(t *testing.T) {
	ctx := context.Background()
	olds := []string{sa("old-1"), sa("old-2"), sa("old-3")}
	base := managedDoc(olds...)
	quota := len(base) + subjectLen(sa("new-1")) // room for exactly one more

	tests := []struct {
		name       string
		stale      []string
		pruneErr   error
		add        []string
		wantErr    []bool // per request
		wantSubs   []string
		wantPruned bool
	}{
		{name: "fits", add: []string{sa("new-1")}, wantErr: []bool{false},
			wantSubs: append(slices.Clone(olds), sa("new-1"))},
		{name: "second does not fit, nothing stale", add: []string{sa("new-1"), sa("new-2")}, wantErr: []bool{false, true},
			wantSubs: append(slices.Clone(olds), sa("new-1")), wantPruned: true},
		{name: "prune makes room", stale: []string{sa("old-2")}, add: []string{sa("new-1"), sa("new-2")},
			wantErr: []bool{false, false}, wantSubs: []string{sa("old-1"), sa("old-3"), sa("new-1"), sa("new-2")}, wantPruned: true},
		{name: "prune never drops what is being added", stale: []string{sa("new-2")}, add: []string{sa("new-1"), sa("new-2")},
			wantErr: []bool{false, true}, wantSubs: append(slices.Clone(olds), sa("new-1")), wantPruned: true},
		{name: "prune fails", pruneErr: errors.New("kube down"), add: []string{sa("new-1"), sa("new-2")},
			wantErr: []bool{false, true}, wantSubs: append(slices.Clone(olds), sa("new-1")), wantPruned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIAM(base)
			f.quota = quota
			f.hold, f.entered = make(chan struct{}), make(chan struct{}, 10)
			var pruneCalls [][]string
			var mu sync.Mutex
			w := NewWriter(f, WriterOptions{OIDCProvider: testProvider,
				Prune: func(_ context.Context, role string, subjects []string) ([]string, error) {
					mu.Lock()
					defer mu.Unlock()
					if role != roleARN {
						t.Errorf("prune for %q", role)
					}
					pruneCalls = append(pruneCalls, subjects)
					return tt.stale, tt.pruneErr
				}})
			// A blocker round first, so that the requests share round 2.
			errs := make([]chan error, len(tt.add))
			blocker := make(chan error, 1)
			go func() { blocker <- w.Remove(ctx, roleARN, sa("nobody")) }()
			<-f.entered
			for i, s := range tt.add {
				errs[i] = make(chan error, 1)
				go func() { errs[i] <- w.Ensure(ctx, roleARN, s) }()
				waitQueued(t, w, roleARN, i+1)
			}
			close(f.hold)
			if err := <-blocker; err != nil {
				t.Fatal(err)
			}
			for i := range tt.add {
				err := <-errs[i]
				if !tt.wantErr[i] {
					if err != nil {
						t.Errorf("request %d: %v", i, err)
					}
					continue
				}
				var se *SizeError
				if !errors.As(err, &se) {
					t.Fatalf("request %d: got %v, want *SizeError", i, err)
				}
				if se.Role != roleARN || se.Quota != quota || se.Size <= quota {
					t.Errorf("SizeError %+v", se)
				}
				want := fmt.Sprintf("trust policy of role %s would be %d characters, over the quota of %d", roleARN, se.Size, quota)
				if err.Error() != want {
					t.Errorf("message %q", err.Error())
				}
			}
			if got := f.subjects(t); !slices.Equal(got, tt.wantSubs) {
				t.Errorf("subjects %q, want %q", got, tt.wantSubs)
			}
			if (len(pruneCalls) > 0) != tt.wantPruned {
				t.Errorf("prune called %d times, want called=%v", len(pruneCalls), tt.wantPruned)
			}
			for _, call := range pruneCalls {
				if !slices.Equal(call, olds) {
					t.Errorf("prune got %q, want the current subjects %q", call, olds)
				}
			}
		})
	}
}

type recordingLocker struct {
	mu     sync.Mutex
	held   bool
	locks  int
	err    error
	events []string
}

func (l *recordingLocker) Lock(_ context.Context, role string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	if l.held {
		return nil, errors.New("lock already held")
	}
	l.held = true
	l.locks++
	l.events = append(l.events, "lock "+role)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.held = false
		l.events = append(l.events, "unlock "+role)
	}, nil
}

func TestWriterLocker(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc())
	l := &recordingLocker{}
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider, Locker: l})
	if err := w.Ensure(ctx, roleARN, sa("a")); err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(ctx, roleARN, sa("a")); err != nil {
		t.Fatal(err)
	}
	want := []string{"lock " + roleARN, "unlock " + roleARN, "lock " + roleARN, "unlock " + roleARN}
	if !slices.Equal(l.events, want) {
		t.Fatalf("lock events %q", l.events)
	}
	l.err = errors.New("lease lost")
	err := w.Ensure(ctx, roleARN, sa("b"))
	if err == nil || !strings.Contains(err.Error(), "lease lost") || !strings.Contains(err.Error(), roleARN) {
		t.Fatalf("got %v", err)
	}
	if slices.Contains(f.subjects(t), sa("b")) {
		t.Fatal("wrote without the lock")
	}
}

func TestWriterCallerContext(t *testing.T) {
	f := newFakeIAM(managedDoc())
	f.hold, f.entered = make(chan struct{}), make(chan struct{}, 10)
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	first := make(chan error, 1)
	go func() { first <- w.Ensure(context.Background(), roleARN, sa("a")) }()
	<-f.entered

	ctx, cancel := context.WithCancel(context.Background())
	canceled := make(chan error, 1)
	go func() { canceled <- w.Ensure(ctx, roleARN, sa("gone")) }()
	waitQueued(t, w, roleARN, 1)
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	close(f.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The round after the cancelled request's has nothing to do.
	polltest.Until(t, "the role's runner to finish", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.queues) == 0
	})
	if slices.Contains(f.subjects(t), sa("gone")) {
		t.Fatal("a request cancelled while queued was applied")
	}
	if _, u := f.counts(); u != 1 {
		t.Fatalf("%d updates, want 1", u)
	}
}

func TestWriterQuotaError(t *testing.T) {
	f := newFakeIAM(managedDoc())
	f.quotaErr = &iam.Error{Kind: iam.KindThrottled, Action: "iam:GetAccountSummary", Code: "Throttling"}
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	err := w.Ensure(context.Background(), roleARN, sa("a"))
	if !iam.IsKind(err, iam.KindThrottled) {
		t.Fatalf("got %v", err)
	}
}

func TestErrorReason(t *testing.T) {
	for err, want := range map[error]string{
		&SizeError{}:                                                "size",
		&NoManagedStatementError{}:                                  "no_managed_statement",
		fmt.Errorf("x: %w", ErrMalformedDocument):                   "malformed",
		&lockError{errors.New("x")}:                                 "lock",
		fmt.Errorf("x: %w", &iam.Error{Kind: iam.KindAccessDenied}): "iam_access_denied",
		context.Canceled:                                            "canceled",
		errors.New("boom"):                                          "other",
	} {
		if got := errorReason(err); got != want {
			t.Errorf("errorReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &m)
	return 0
}

func TestWriterEnsureAddedReportsNewSubjectsOnly(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(sa("run-1")))
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	added, err := w.EnsureAdded(ctx, roleARN, sa("run-1"))
	if err != nil || added {
		t.Fatalf("present subject: added=%v err=%v", added, err)
	}
	added, err = w.EnsureAdded(ctx, roleARN, sa("run-2"))
	if err != nil || !added {
		t.Fatalf("new subject: added=%v err=%v", added, err)
	}
	f.mu.Lock()
	f.updateErr = errors.New("boom")
	f.mu.Unlock()
	added, err = w.EnsureAdded(ctx, roleARN, sa("run-3"))
	if err == nil || added {
		t.Fatalf("failed write: added=%v err=%v", added, err)
	}
}

// TestWriterSeesForeignEditsBetweenRounds: the writer reuses the document of
// its previous round only while IAM returns exactly that text; an edit by
// someone else in between is read, kept and built upon.
func TestWriterSeesForeignEditsBetweenRounds(t *testing.T) {
	ctx := context.Background()
	f := newFakeIAM(managedDoc(""))
	w := NewWriter(f, WriterOptions{OIDCProvider: testProvider})
	if err := w.Ensure(ctx, roleARN, sa("run-1")); err != nil {
		t.Fatal(err)
	}
	// Someone edits the role by hand: a subject of theirs and a new statement.
	f.mu.Lock()
	f.docs[roleName] = strings.Replace(managedDoc(sa("run-1"), "system:serviceaccount:other:hand-made"), `"Statement":[`,
		`"Statement":[{"Sid":"Audit","Effect":"Deny","Principal":"*","Action":"sts:TagSession"},`, 1)
	f.mu.Unlock()
	if err := w.Ensure(ctx, roleARN, sa("run-2")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got := f.docs[roleName]
	f.mu.Unlock()
	for _, want := range []string{`"Sid":"Audit"`, "system:serviceaccount:other:hand-made", sa("run-1"), sa("run-2")} {
		if !strings.Contains(got, want) {
			t.Errorf("lost %s: %s", want, got)
		}
	}
	// And a later round on the unchanged text builds on it too.
	if err := w.Ensure(ctx, roleARN, sa("run-3")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got = f.docs[roleName]
	f.mu.Unlock()
	for _, want := range []string{`"Sid":"Audit"`, "hand-made", sa("run-2"), sa("run-3")} {
		if !strings.Contains(got, want) {
			t.Errorf("lost %s: %s", want, got)
		}
	}
}
