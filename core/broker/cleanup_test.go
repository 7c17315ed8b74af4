package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
)

const computeNS = "domino-compute"

// fakePods is the compute namespace's pod view: live pods per service
// account, a ready flag, and the OnPodGone callbacks, fired by fire.
type fakePods struct {
	mu       sync.Mutex
	notReady error
	live     map[string][]model.Pod
	gone     []func(model.Pod)
}

var _ Pods = (*fakePods)(nil)

func (f *fakePods) Namespace() string { return computeNS }

func (f *fakePods) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}

func (f *fakePods) LivePodsOf(sa string) []model.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.live[sa])
}

func (f *fakePods) OnPodGone(fn func(model.Pod)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = append(f.gone, fn)
	return nil
}

// setLive replaces the live pods of sa.
func (f *fakePods) setLive(sa string, pods ...model.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil {
		f.live = map[string][]model.Pod{}
	}
	f.live[sa] = pods
}

// fire reports p gone to every registered callback.
func (f *fakePods) fire(p model.Pod) {
	f.mu.Lock()
	fns := slices.Clone(f.gone)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(p)
	}
}

// memTrust is an in-memory TrustEditor. Like the real writer, Remove takes
// out a subject in both its exact and its legacy form.
type memTrust struct {
	mu        sync.Mutex
	roles     map[string][]string
	unmanaged map[string]bool  // Subjects fails with model.ErrRoleNotManaged
	failing   map[string]error // Subjects fails with this error
	removes   []trustCall
}

var _ TrustEditor = (*memTrust)(nil)

func newMemTrust(roles map[string][]string) *memTrust {
	m := &memTrust{roles: map[string][]string{}, unmanaged: map[string]bool{}, failing: map[string]error{}}
	for r, subs := range roles {
		m.roles[r] = slices.Clone(subs)
	}
	return m
}

func (m *memTrust) Subjects(_ context.Context, role string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmanaged[role] {
		return nil, fmt.Errorf("trust: role %s: %w", role, model.ErrRoleNotManaged)
	}
	if err := m.failing[role]; err != nil {
		return nil, err
	}
	return slices.Clone(m.roles[role]), nil
}

func (m *memTrust) Remove(_ context.Context, role string, subjects ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removes = append(m.removes, trustCall{role, slices.Clone(subjects)})
	drop := map[string]bool{}
	for _, s := range subjects {
		drop[s] = true
		if ps, err := model.ParseSubject(s); err == nil {
			drop[ps.Exact()], drop[ps.LegacyForm()] = true, true
		}
	}
	m.roles[role] = slices.DeleteFunc(m.roles[role], func(s string) bool { return drop[s] })
	return nil
}

func (m *memTrust) add(role, subject string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roles[role] = append(m.roles[role], subject)
}

func (m *memTrust) subjects(role string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.roles[role])
}

// removeCalls returns Remove's calls, sorted by role.
func (m *memTrust) removeCalls() []trustCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.removes)
	slices.SortFunc(out, func(a, b trustCall) int { return cmp.Compare(a.role, b.role) })
	return out
}

// recAuditor records trust changes and sends each one on events.
type recAuditor struct {
	mu      sync.Mutex
	changes []model.TrustChange
	events  chan model.TrustChange
}

func newRecAuditor() *recAuditor { return &recAuditor{events: make(chan model.TrustChange, 100)} }

func (a *recAuditor) Record(c model.TrustChange) {
	a.mu.Lock()
	a.changes = append(a.changes, c)
	a.mu.Unlock()
	a.events <- c
}

// recorded returns the changes, sorted by role, subject and pod.
func (a *recAuditor) recorded() []model.TrustChange {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.changes)
	sortChanges(out)
	return out
}

func sortChanges(cs []model.TrustChange) {
	slices.SortFunc(cs, func(a, b model.TrustChange) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Pod.Name, b.Pod.Name))
	})
}

// next waits for n recorded changes and returns them sorted. The timeout
// only bounds a broken test; nothing is timed.
func (a *recAuditor) next(t *testing.T, n int) []model.TrustChange {
	t.Helper()
	var out []model.TrustChange
	deadline := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case c := <-a.events:
			out = append(out, c)
		case <-deadline:
			t.Fatalf("waited for %d trust changes, got %d: %+v", n, len(out), out)
		}
	}
	sortChanges(out)
	return out
}

func exact(sa string) string { return model.Subject{Namespace: computeNS, ServiceAccount: sa}.String() }
func legacy(sa string) string {
	return model.Subject{Namespace: computeNS, ServiceAccount: sa, Legacy: true}.String()
}

const (
	roleA         = "arn:aws:iam::946429944765:role/proxy-a"
	roleB         = "arn:aws:iam::946429944765:role/proxy-b"
	roleC         = "arn:aws:iam::946429944765:role/proxy-c"
	roleUnmanaged = "arn:aws:iam::946429944765:role/not-federated"
	foreignNS     = "system:serviceaccount:other-ns:run-gone"
	notASubject   = "arn:aws:iam::946429944765:root"
)

func staticRoles(roles ...string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) { return roles, nil }
}

func newTestCleaner(t *testing.T, o CleanerOptions) *Cleaner {
	t.Helper()
	c, err := NewCleaner(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReconcile(t *testing.T) {
	livePod := model.Pod{Namespace: computeNS, Name: "run-live-0", ServiceAccount: "run-live", RunID: "live", UserID: "u1"}
	initial := map[string][]string{
		roleA:         {exact("run-gone"), legacy("run-old"), exact("run-live"), foreignNS, notASubject},
		roleB:         {exact("run-gone"), legacy("run-gone"), legacy("run-live")},
		roleUnmanaged: {exact("run-gone")},
	}
	gonePod := func(sa string) model.Pod { return model.Pod{Namespace: computeNS, ServiceAccount: sa} }
	tests := []struct {
		name        string
		legacy      bool
		notReady    error
		rolesErr    error
		failing     map[string]error
		wantN       int
		wantErr     error
		wantRemoves []trustCall
		wantAfter   map[string][]string
		wantAudit   []model.TrustChange
	}{
		{
			name:  "removes subjects without live pods",
			wantN: 3,
			wantRemoves: []trustCall{
				{roleA, []string{exact("run-gone"), exact("run-old")}},
				{roleB, []string{exact("run-gone")}},
			},
			wantAfter: map[string][]string{
				roleA:         {exact("run-live"), foreignNS, notASubject},
				roleB:         {legacy("run-live")},
				roleUnmanaged: {exact("run-gone")},
			},
			wantAudit: []model.TrustChange{
				{Role: roleA, Subject: exact("run-gone"), Cause: "reconcile", Pod: gonePod("run-gone")},
				{Role: roleA, Subject: exact("run-old"), Cause: "reconcile", Pod: gonePod("run-old")},
				{Role: roleB, Subject: exact("run-gone"), Cause: "reconcile", Pod: gonePod("run-gone")},
			},
		},
		{
			name:   "legacy subjects are removed in legacy form",
			legacy: true,
			wantN:  3,
			wantRemoves: []trustCall{
				{roleA, []string{legacy("run-gone"), legacy("run-old")}},
				{roleB, []string{legacy("run-gone")}},
			},
			wantAfter: map[string][]string{
				roleA:         {exact("run-live"), foreignNS, notASubject},
				roleB:         {legacy("run-live")},
				roleUnmanaged: {exact("run-gone")},
			},
			wantAudit: []model.TrustChange{
				{Role: roleA, Subject: legacy("run-gone"), Cause: "reconcile", Pod: gonePod("run-gone")},
				{Role: roleA, Subject: legacy("run-old"), Cause: "reconcile", Pod: gonePod("run-old")},
				{Role: roleB, Subject: legacy("run-gone"), Cause: "reconcile", Pod: gonePod("run-gone")},
			},
		},
		{
			name:      "refuses while the pod view is not ready",
			notReady:  errors.New("pod informer not synced"),
			wantAfter: initial,
		},
		{
			name:      "refuses without the managed roles",
			rolesErr:  errors.New("mapping store down"),
			wantAfter: initial,
		},
		{
			name:    "a failing role does not stop the others",
			failing: map[string]error{roleA: errors.New("iam: GetRole throttled")},
			wantN:   1,
			wantRemoves: []trustCall{
				{roleB, []string{exact("run-gone")}},
			},
			wantAfter: map[string][]string{
				roleA:         initial[roleA],
				roleB:         {legacy("run-live")},
				roleUnmanaged: {exact("run-gone")},
			},
			wantAudit: []model.TrustChange{
				{Role: roleB, Subject: exact("run-gone"), Cause: "reconcile", Pod: gonePod("run-gone")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods := &fakePods{notReady: tt.notReady}
			pods.setLive("run-live", livePod)
			tr := newMemTrust(initial)
			tr.unmanaged[roleUnmanaged] = true
			for r, err := range tt.failing {
				tr.failing[r] = err
			}
			roles := staticRoles(roleA, roleB, roleUnmanaged)
			if tt.rolesErr != nil {
				roles = func(context.Context) ([]string, error) { return nil, tt.rolesErr }
			}
			audit := newRecAuditor()
			c := newTestCleaner(t, CleanerOptions{Pods: pods, Trust: tr, Roles: roles, LegacySubjects: tt.legacy, Audit: audit})

			n, err := c.Reconcile(context.Background())

			wantErr := tt.notReady
			if wantErr == nil {
				wantErr = tt.rolesErr
			}
			for _, e := range tt.failing {
				wantErr = e
			}
			if (err == nil) != (wantErr == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
				t.Errorf("Reconcile err = %v, want %v", err, wantErr)
			}
			if n != tt.wantN {
				t.Errorf("Reconcile removed %d, want %d", n, tt.wantN)
			}
			if got := tr.removeCalls(); !slices.EqualFunc(got, tt.wantRemoves, func(a, b trustCall) bool {
				return a.role == b.role && slices.Equal(a.subjects, b.subjects)
			}) {
				t.Errorf("Remove calls = %v, want %v", got, tt.wantRemoves)
			}
			for role, want := range tt.wantAfter {
				if got := tr.subjects(role); !slices.Equal(got, want) {
					t.Errorf("%s holds %v, want %v", role, got, want)
				}
			}
			if got := audit.recorded(); !slices.Equal(got, tt.wantAudit) {
				t.Errorf("audit = %+v, want %+v", got, tt.wantAudit)
			}
		})
	}
}

// runCleaner runs c until the test ends; done is closed when Run returns.
func runCleaner(t *testing.T, c *Cleaner) (stop func(), done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		c.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-ch
	}
	t.Cleanup(stop)
	return stop, ch
}

// While leading, a pod going takes its subject out of every role at once,
// without waiting for a reconcile.
func TestRunRemovesSubjectsOfGonePods(t *testing.T) {
	podX := model.Pod{Namespace: computeNS, Name: "run-x-0", UID: "uid-x", RunID: "x", UserID: "u1", ServiceAccount: "run-x"}
	podY := model.Pod{Namespace: computeNS, Name: "run-y-0", UID: "uid-y", RunID: "y", UserID: "u2", ServiceAccount: "run-y"}
	podZ1 := model.Pod{Namespace: computeNS, Name: "run-z-0", RunID: "z", ServiceAccount: "run-z"}
	podZ2 := model.Pod{Namespace: computeNS, Name: "run-z-1", RunID: "z", ServiceAccount: "run-z"}
	pods := &fakePods{}
	pods.setLive("run-x", podX)
	pods.setLive("run-y", podY)
	pods.setLive("run-z", podZ1, podZ2)
	tr := newMemTrust(map[string][]string{
		roleA: {exact("run-boot"), exact("run-x"), exact("run-y"), exact("run-z")},
		roleB: {exact("run-boot"), legacy("run-x"), exact("run-z")},
		roleC: {exact("run-boot"), exact("run-y")},
	})
	audit := newRecAuditor()
	c := newTestCleaner(t, CleanerOptions{Pods: pods, Trust: tr, Roles: staticRoles(roleA, roleB, roleC), Audit: audit})
	runCleaner(t, c)

	// Leading starts with a full reconcile: run-boot has no pod. Every
	// role holds it, so its three changes also say that the reconcile has
	// looked at every live pod it will look at.
	for _, c := range audit.next(t, 3) {
		if c.Subject != exact("run-boot") || c.Cause != "reconcile" {
			t.Fatalf("change = %+v, want run-boot's reconcile", c)
		}
	}

	// run-x's pod goes: its subject leaves both roles that hold it.
	pods.setLive("run-x")
	pods.fire(podX)
	want := []model.TrustChange{
		{Role: roleA, Subject: exact("run-x"), Cause: "pod-gone", Pod: podX},
		{Role: roleB, Subject: exact("run-x"), Cause: "pod-gone", Pod: podX},
	}
	if got := audit.next(t, 2); !slices.Equal(got, want) {
		t.Fatalf("changes = %+v, want %+v", got, want)
	}

	// One of run-z's two pods goes: another still runs as run-z, so nothing
	// changes. A pod of another namespace going says nothing of this one's
	// run-w (just mapped, its pod not yet in the view). run-y's pod then
	// goes, and its removal is the barrier: events are handled in order.
	pods.setLive("run-z", podZ2)
	pods.fire(podZ1)
	tr.add(roleA, exact("run-w"))
	pods.fire(model.Pod{Namespace: "other-ns", Name: "run-w-0", ServiceAccount: "run-w"})
	pods.setLive("run-y")
	pods.fire(podY)
	want = []model.TrustChange{
		{Role: roleA, Subject: exact("run-y"), Cause: "pod-gone", Pod: podY},
		{Role: roleC, Subject: exact("run-y"), Cause: "pod-gone", Pod: podY},
	}
	if got := audit.next(t, 2); !slices.Equal(got, want) {
		t.Fatalf("changes = %+v, want %+v", got, want)
	}
	if got := audit.recorded(); len(got) != 7 {
		t.Errorf("recorded %d changes, want 7: %+v", len(got), got)
	}
	for role, want := range map[string][]string{roleA: {exact("run-z"), exact("run-w")}, roleB: {exact("run-z")}, roleC: {}} {
		if got := tr.subjects(role); !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", role, got, want)
		}
	}
}

// gatedRoles lists roles, except that its first call after each arm fails
// and reports on called: Run's initial reconcile then removes nothing, and
// the test learns that Run is leading.
type gatedRoles struct {
	roles  []string
	mu     sync.Mutex
	armed  bool
	called chan struct{}
}

func (g *gatedRoles) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
}

func (g *gatedRoles) list(context.Context) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.armed {
		g.armed = false
		g.called <- struct{}{}
		return nil, errors.New("first reconcile skipped by the test")
	}
	return g.roles, nil
}

// A pod going while the cleaner does not lead changes nothing: the event
// is not kept for a later leadership. Shown by a later event, fired while
// leading, whose effect is the only one.
func TestRunIgnoresPodsGoneWhileNotLeading(t *testing.T) {
	podA := model.Pod{Namespace: computeNS, Name: "run-a-0", RunID: "a", ServiceAccount: "run-a"}
	podB := model.Pod{Namespace: computeNS, Name: "run-b-0", RunID: "b", ServiceAccount: "run-b"}
	for _, when := range []string{"before leading", "after leading"} {
		t.Run(when, func(t *testing.T) {
			pods := &fakePods{}
			tr := newMemTrust(map[string][]string{roleA: {exact("run-a"), exact("run-b")}})
			g := &gatedRoles{roles: []string{roleA}, called: make(chan struct{}, 1)}
			audit := newRecAuditor()
			c := newTestCleaner(t, CleanerOptions{Pods: pods, Trust: tr, Roles: g.list, Audit: audit})
			if when == "after leading" {
				g.arm()
				stop, done := runCleaner(t, c)
				<-g.called
				stop()
				<-done
			}

			pods.fire(podA) // not leading

			g.arm()
			runCleaner(t, c)
			<-g.called // leading now; its reconcile removed nothing
			pods.fire(podB)
			want := model.TrustChange{Role: roleA, Subject: exact("run-b"), Cause: "pod-gone", Pod: podB}
			if got := audit.next(t, 1); got[0] != want {
				t.Fatalf("change = %+v, want %+v", got[0], want)
			}
			// Had run-a's event been kept, it would have been handled first.
			if got := audit.recorded(); len(got) != 1 {
				t.Errorf("recorded %+v, want run-b's change only", got)
			}
			if got := tr.subjects(roleA); !slices.Equal(got, []string{exact("run-a")}) {
				t.Errorf("%s holds %v, want run-a still", roleA, got)
			}
		})
	}
}

func TestStaleSubjects(t *testing.T) {
	pods := &fakePods{}
	pods.setLive("run-live", model.Pod{Namespace: computeNS, Name: "run-live-0", ServiceAccount: "run-live"})
	stale := StaleSubjects(pods)
	in := []string{exact("run-gone"), exact("run-live"), legacy("run-old"), legacy("run-live"), foreignNS, notASubject}
	got, err := stale(context.Background(), roleA, in)
	if want := []string{exact("run-gone"), legacy("run-old")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("StaleSubjects = %v, %v; want %v", got, err, want)
	}

	notSynced := errors.New("pod informer not synced")
	pods.notReady = notSynced
	got, err = stale(context.Background(), roleA, in)
	if !errors.Is(err, notSynced) || got != nil {
		t.Errorf("StaleSubjects while not ready = %v, %v; want nothing and the readiness error", got, err)
	}
}

// Without elastic pools, the roles swept are the proxy roles to update.
func TestManagedProxyRoles(t *testing.T) {
	pair := func(proxy string, update bool) model.RolePair {
		return model.RolePair{IAMRoleARN: testGrant.IAMRoleARN, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: update}
	}
	store := &fakeStore{snap: model.Snapshot{Mappings: map[string]model.Mapping{
		"o1": {Org: "o1", Pairs: []model.RolePair{pair(roleC, true), pair(roleA, true)}},
		"o2": {Org: "o2", Pairs: []model.RolePair{pair(roleA, true), pair(roleB, false)}},
		"o3": {Org: "o3", Pairs: []model.RolePair{pair(roleC, true)}},
	}}}
	got, err := ManagedPoolRoles(store, nil)(context.Background())
	if want := []string{roleA, roleC}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ManagedProxyRoles = %v, %v; want %v", got, err, want)
	}

	down := model.Errorf(model.KindUnavailable, "mappings_unavailable", "down")
	store.err = down
	if _, err := ManagedPoolRoles(store, nil)(context.Background()); !errors.Is(err, down) {
		t.Errorf("ManagedProxyRoles err = %v, want the store's", err)
	}
}

// AuditedTrust records what map requests add and undo, naming the run and
// user of the pods behind the subject.
func TestAuditedTrust(t *testing.T) {
	p1 := model.Pod{Namespace: computeNS, Name: "run-r1-0", UID: "uid-1", RunID: "r1", UserID: "u1", ServiceAccount: "run-r1"}
	p2 := model.Pod{Namespace: computeNS, Name: "run-r1-1", UID: "uid-2", RunID: "r1", UserID: "u1", ServiceAccount: "run-r1"}
	iamDown := errors.New("iam down")
	const otherR1 = "system:serviceaccount:other-ns:run-r1"
	tests := []struct {
		name      string
		remove    bool
		subjects  []string
		present   bool  // EnsureAdded finds the subject there already
		err       error // the next writer fails
		wantAudit []model.TrustChange
	}{
		{
			name: "add records every live pod", subjects: []string{exact("run-r1")},
			wantAudit: []model.TrustChange{
				{Added: true, Role: roleA, Subject: exact("run-r1"), Cause: "map", Pod: p1},
				{Added: true, Role: roleA, Subject: exact("run-r1"), Cause: "map", Pod: p2},
			},
		},
		{
			name: "legacy subject", subjects: []string{legacy("run-r1")},
			wantAudit: []model.TrustChange{
				{Added: true, Role: roleA, Subject: legacy("run-r1"), Cause: "map", Pod: p1},
				{Added: true, Role: roleA, Subject: legacy("run-r1"), Cause: "map", Pod: p2},
			},
		},
		{name: "already present: nothing recorded", subjects: []string{exact("run-r1")}, present: true},
		{name: "failed add: nothing recorded", subjects: []string{exact("run-r1")}, err: iamDown},
		{
			name: "undo records removals", remove: true, subjects: []string{exact("run-r1")},
			wantAudit: []model.TrustChange{
				{Role: roleA, Subject: exact("run-r1"), Cause: "undo", Pod: p1},
				{Role: roleA, Subject: exact("run-r1"), Cause: "undo", Pod: p2},
			},
		},
		{name: "failed undo: nothing recorded", remove: true, subjects: []string{exact("run-r1")}, err: iamDown},
		{
			// run-r1 of another namespace must not borrow this one's pods.
			name: "subjects without live pods name what they can", subjects: []string{exact("run-gone"), otherR1, notASubject},
			wantAudit: []model.TrustChange{
				{Added: true, Role: roleA, Subject: exact("run-gone"), Cause: "map", Pod: model.Pod{Namespace: computeNS, ServiceAccount: "run-gone"}},
				{Added: true, Role: roleA, Subject: otherR1, Cause: "map", Pod: model.Pod{Namespace: "other-ns", ServiceAccount: "run-r1"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods := &fakePods{}
			pods.setLive("run-r1", p1, p2)
			next := &fakeTrust{present: map[string]bool{roleA: tt.present}, fail: map[string]error{}, removeErr: tt.err}
			if !tt.remove && tt.err != nil {
				next.fail[roleA] = tt.err
			}
			audit := newRecAuditor()
			at := &AuditedTrust{Next: next, Pods: pods, Audit: audit}

			var err error
			if tt.remove {
				err = at.Remove(context.Background(), roleA, tt.subjects...)
			} else {
				var added bool
				added, err = at.EnsureAdded(context.Background(), roleA, tt.subjects...)
				if added != (tt.err == nil && !tt.present) {
					t.Errorf("added = %v", added)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			want := slices.Clone(tt.wantAudit)
			sortChanges(want)
			if got := audit.recorded(); !slices.Equal(got, want) {
				t.Errorf("audit = %+v, want %+v", got, want)
			}
		})
	}
}

// listFailing is a PoolMembers whose listing of one pool fails; every other
// elastic pool has one created member, `<pool>-001` under its path.
type listFailing struct {
	failing string
	err     error
}

func (l listFailing) Members(_ context.Context, pair model.RolePair) ([]string, error) {
	if pair.PoolName() == l.failing {
		return nil, l.err
	}
	return append(slices.Clone(pair.ProxyMembers()), "arn:aws:iam::946429944765:role"+pair.ProxyPool.Elastic.Path+pair.PoolName()+"-001"), nil
}

// TestReconcileSweepsPastAPoolItCannotList: a pool whose members cannot be
// listed (ListRoles denied or throttled) is swept by its static members,
// every other role is swept as usual, and the listing error is returned.
func TestReconcileSweepsPastAPoolItCannotList(t *testing.T) {
	elastic := func(name, static string) model.RolePair {
		return model.RolePair{IAMRoleARN: testGrant.IAMRoleARN, ProxyIAMRoleARN: static, UpdateTrustPolicy: true,
			ProxyPool: &model.ProxyPool{Name: name, Members: []string{static}, Elastic: &model.ElasticPool{
				TemplateRoleARN: roleC, Path: "/irsa-pools/" + name + "/", PermissionsBoundaryARN: "arn:aws:iam::946429944765:policy/b"}}}
	}
	store := &fakeStore{snap: model.Snapshot{Mappings: map[string]model.Mapping{
		"o1": {Org: "o1", Pairs: []model.RolePair{elastic("p1", roleA)}},
		"o2": {Org: "o2", Pairs: []model.RolePair{elastic("p2", roleB)}},
	}}}
	createdP2 := "arn:aws:iam::946429944765:role/irsa-pools/p2/p2-001"
	throttled := errors.New("iam:ListRoles: Throttling")
	trust := newMemTrust(map[string][]string{
		roleA:     {exact("run-gone")},
		roleB:     {exact("run-gone")},
		createdP2: {exact("run-gone"), exact("run-live")},
	})
	pods := &fakePods{}
	pods.setLive("run-live", model.Pod{Namespace: computeNS, Name: "run-live-0", ServiceAccount: "run-live"})
	c := newTestCleaner(t, CleanerOptions{Pods: pods, Trust: trust, Roles: ManagedPoolRoles(store, listFailing{"p1", throttled}), Audit: newRecAuditor()})

	n, err := c.Reconcile(context.Background())
	if !errors.Is(err, throttled) {
		t.Fatalf("Reconcile error = %v, want the listing error", err)
	}
	if n != 3 {
		t.Errorf("removed %d subjects, want 3 (p1's static member, p2's static and created ones)", n)
	}
	for _, r := range []string{roleA, roleB} {
		if got := trust.subjects(r); len(got) != 0 {
			t.Errorf("%s still holds %v", r, got)
		}
	}
	if got := trust.subjects(createdP2); !slices.Equal(got, []string{exact("run-live")}) {
		t.Errorf("%s holds %v, want only the live run", createdP2, got)
	}
}

// TestReconcileAsksTheAPIServerBeforeRemoving: a subject whose pod the
// cache has not seen yet (a pod another replica mapped just before this one
// became leader) is kept when the API server lists a live pod running as
// it; the API server is asked only for the candidates, once per service
// account; an API error keeps the subject and is returned.
func TestReconcileAsksTheAPIServerBeforeRemoving(t *testing.T) {
	trust := newMemTrust(map[string][]string{
		roleA: {exact("run-new"), exact("run-gone"), exact("run-live")},
		roleB: {exact("run-new"), exact("run-flaky")},
	})
	pods := &fakePods{}
	pods.setLive("run-live", model.Pod{Namespace: computeNS, Name: "run-live-0", ServiceAccount: "run-live"})
	down := errors.New("apiserver: connection refused")
	var (
		mu    sync.Mutex
		asked []string
	)
	now := func(_ context.Context, sa string) ([]model.Pod, error) {
		mu.Lock()
		asked = append(asked, sa)
		mu.Unlock()
		switch sa {
		case "run-new": // running, not in this replica's cache yet
			return []model.Pod{{Namespace: computeNS, Name: "run-new-0", ServiceAccount: sa}}, nil
		case "run-flaky":
			return nil, down
		}
		return nil, nil
	}
	c := newTestCleaner(t, CleanerOptions{Pods: pods, Trust: trust, Roles: staticRoles(roleA, roleB), Audit: newRecAuditor(), LivePodsNow: now})
	n, err := c.Reconcile(context.Background())
	if n != 1 || !errors.Is(err, down) {
		t.Fatalf("Reconcile = %d, %v: want only run-gone removed and the API error", n, err)
	}
	if got := trust.subjects(roleA); !slices.Equal(got, []string{exact("run-new"), exact("run-live")}) {
		t.Errorf("%s holds %v", roleA, got)
	}
	if got := trust.subjects(roleB); !slices.Equal(got, []string{exact("run-new"), exact("run-flaky")}) {
		t.Errorf("%s holds %v", roleB, got)
	}
	slices.Sort(asked)
	if want := []string{"run-flaky", "run-gone", "run-new"}; !slices.Equal(asked, want) {
		t.Errorf("API server asked for %v, want %v (candidates only, once each)", asked, want)
	}
}
