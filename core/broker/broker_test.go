package broker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Fakes of the broker's narrow interfaces: pure logic, no I/O. Each records
// its calls under a mutex (Map writes to proxy roles concurrently) and can be
// told to fail.

type fakeAuth struct {
	id  sdk.Identity
	err error
}

func (f fakeAuth) Authenticate(context.Context, sdk.Credentials) (sdk.Identity, error) {
	if f.err != nil {
		return sdk.Identity{}, f.err
	}
	return f.id, nil
}

// fakeWorkloads resolves run <id> to service account run-<id> in
// domino-compute, started by owner.
type fakeWorkloads struct {
	owner string
	err   error

	mu    sync.Mutex
	calls []model.WorkloadRequest
}

func (f *fakeWorkloads) Resolve(_ context.Context, req model.WorkloadRequest) (model.Workload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	if f.err != nil {
		return model.Workload{}, f.err
	}
	return model.Workload{RunID: req.RunID, Type: req.WorkloadType, Namespace: "domino-compute", ServiceAccount: "run-" + req.RunID, OwnerID: f.owner}, nil
}

func (f *fakeWorkloads) resolved() []model.WorkloadRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

type fakePolicy struct {
	grants    []model.Grant
	allow     bool
	allowErr  error
	grantsErr error
	deny      string // an action refused even when allow is set

	mu     sync.Mutex
	allows []policy.Input // inputs of Allow
	asked  []policy.Input // inputs of Grants
}

func (f *fakePolicy) Grants(_ context.Context, in policy.Input, _ model.Snapshot) (policy.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, in)
	if f.grantsErr != nil {
		return policy.Decision{}, f.grantsErr
	}
	return policy.Decision{ID: "d1", Grants: f.grants}, nil
}

func (f *fakePolicy) Allow(_ context.Context, in policy.Input) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allows = append(f.allows, in)
	if f.allowErr != nil {
		return false, f.allowErr
	}
	return f.allow && in.Request.Action != f.deny, nil
}

func (f *fakePolicy) calls() (allows, asked []policy.Input) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.allows), slices.Clone(f.asked)
}

// fakeTrust is a TrustWriter whose outcome is chosen per role.
type fakeTrust struct {
	present map[string]bool  // roles that already hold the subject: EnsureAdded reports added=false
	fail    map[string]error // roles whose EnsureAdded fails
	onFail  func()           // called before a failing EnsureAdded returns
	// removeErr fails every Remove. A Remove with a done context fails too,
	// as a real IAM call would, and is not recorded.
	removeErr error

	mu      sync.Mutex
	ensured []trustCall
	removed []trustCall
}

type trustCall struct {
	role     string
	subjects []string
}

func (f *fakeTrust) EnsureAdded(_ context.Context, role string, subjects ...string) (bool, error) {
	f.mu.Lock()
	f.ensured = append(f.ensured, trustCall{role, subjects})
	err := f.fail[role]
	f.mu.Unlock()
	if err != nil {
		if f.onFail != nil {
			f.onFail()
		}
		return false, err
	}
	return !f.present[role], nil
}

func (f *fakeTrust) Remove(ctx context.Context, role string, subjects ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.removeErr != nil {
		return f.removeErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, trustCall{role, subjects})
	return nil
}

// roles returns the sorted roles of EnsureAdded and of successful Removes,
// and every subject they were called with.
func (f *fakeTrust) roles() (ensured, removed []string, subjects []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.ensured {
		ensured = append(ensured, c.role)
		subjects = append(subjects, c.subjects...)
	}
	for _, c := range f.removed {
		removed = append(removed, c.role)
		subjects = append(subjects, c.subjects...)
	}
	slices.Sort(ensured)
	slices.Sort(removed)
	return ensured, removed, subjects
}

// fakeStore is a MappingStore holding one snapshot; err fails every call.
type fakeStore struct {
	snap model.Snapshot
	err  error

	mu        sync.Mutex
	snapshots int
	puts      []model.Mapping
	deletes   []string
	batches   []model.Batch
}

func (f *fakeStore) Snapshot(context.Context) (model.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snapshots++
	return f.snap, f.err
}

func (f *fakeStore) Put(_ context.Context, m model.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, m)
	return f.err
}

func (f *fakeStore) Apply(_ context.Context, b model.Batch) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, b)
	return "applied", f.err
}

func (f *fakeStore) Delete(_ context.Context, org string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, org)
	return f.err
}

// touched reports whether any call reached the store.
func (f *fakeStore) touched() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshots+len(f.puts)+len(f.deletes)+len(f.batches) > 0
}

type fakeProxyRoles struct {
	fail map[string]error

	mu       sync.Mutex
	verified []string
}

func (f *fakeProxyRoles) Verify(_ context.Context, role string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verified = append(f.verified, role)
	return f.fail[role]
}

type fakeServiceAccounts struct {
	err error

	mu               sync.Mutex
	created, deleted []string
}

func (f *fakeServiceAccounts) Create(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, name)
	return f.err
}

func (f *fakeServiceAccounts) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, name)
	return f.err
}

const (
	proxyA = "arn:aws:iam::946429944765:role/proxy-a"
	proxyB = "arn:aws:iam::946429944765:role/proxy-b"
	proxyC = "arn:aws:iam::946429944765:role/proxy-c"
)

var (
	alice     = sdk.Identity{ID: "u1", Username: "alice"}
	testGrant = model.Grant{Org: "o", RolePair: model.RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/a", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/p", UpdateTrustPolicy: true}}
)

func grant(asset, proxy string, update bool) model.Grant {
	return model.Grant{Org: "o", RolePair: model.RolePair{IAMRoleARN: asset, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: update}}
}

// harness is a Service over fakes. By default the caller is alice, who
// started every run, and the policy grants testGrant.
type harness struct {
	o         Options
	workloads *fakeWorkloads
	policy    *fakePolicy
	store     *fakeStore
	trust     *fakeTrust
	proxies   *fakeProxyRoles
	sas       *fakeServiceAccounts
	metrics   *metrics.Metrics
	svc       *Service
}

// newHarness builds the Service after configure has adjusted the fakes
// and h.o (the optional ProxyRoles and ServiceAccounts are unset by default).
func newHarness(t *testing.T, configure func(h *harness)) *harness {
	t.Helper()
	h := &harness{
		workloads: &fakeWorkloads{owner: alice.ID},
		policy:    &fakePolicy{grants: []model.Grant{testGrant}},
		store:     &fakeStore{},
		trust:     &fakeTrust{},
		proxies:   &fakeProxyRoles{},
		sas:       &fakeServiceAccounts{},
		metrics:   metrics.New(),
	}
	h.o = Options{Auth: fakeAuth{id: alice}, Workloads: h.workloads, Policy: h.policy, Mappings: h.store, Trust: h.trust, Metrics: h.metrics}
	if configure != nil {
		configure(h)
	}
	s, err := New(h.o)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = s
	return h
}

// wantClassified fails unless err classifies as kind and code ("" = nil error).
func wantClassified(t *testing.T, err error, kind model.Kind, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil, want %s %s", kind, code)
	}
	if k, c, _ := model.Classify(err); k != kind || c != code {
		t.Fatalf("err = %v classified %s %s, want %s %s", err, k, c, kind, code)
	}
}

// counterValue reads a counter. (prometheus/testutil would need a go.mod
// change: its diff dependency is not required by the module.)
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// mapOutcomes reads the MapDuration histogram: observations by outcome.
func mapOutcomes(t *testing.T, m *metrics.Metrics) map[string]uint64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "irsa_map_duration_seconds" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] = mm.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return out
}

func TestMap(t *testing.T) {
	const noRunID = "(none)" // a request without run_id; "" defaults to run1
	const subject = "system:serviceaccount:domino-compute:run-run1"
	notFound := model.Errorf(model.KindNotFound, "run_not_found", "no pod for run run1")
	tokenMismatch := model.Errorf(model.KindForbidden, "pod_token_mismatch", "the pod token is not run run1's")
	policyDown := errors.New("opa: evaluation failed")
	tooLarge := model.Errorf(model.KindConflict, "trust_policy_too_large", "role p: 2100 > 2048")

	tests := []struct {
		name      string
		configure func(h *harness)
		req       MapRequest // Caller defaults to alice, RunID to run1
		wantKind  model.Kind
		wantCode  string // "" = success
		// wantResolved: the resolver was asked; wantForeign: the policy was
		// asked workload.map_foreign; wantWrites: proxies EnsureAdded saw.
		wantResolved bool
		wantForeign  bool
		wantWrites   []string
		check        func(t *testing.T, h *harness, res MapResult, err error)
	}{
		{
			name:         "caller maps own run",
			req:          MapRequest{WorkloadType: "cluster-worker", PodToken: "pod-token", RequestID: "req-1"},
			wantResolved: true, wantWrites: []string{testGrant.ProxyIAMRoleARN},
			check: func(t *testing.T, h *harness, res MapResult, _ error) {
				want := model.WorkloadRequest{RunID: "run1", WorkloadType: "cluster-worker", CallerID: "u1", Username: "alice", PodToken: "pod-token"}
				if got := h.workloads.resolved(); got[0] != want {
					t.Errorf("resolver asked %+v, want %+v", got[0], want)
				}
				if res.Subject != subject || res.DecisionID != "d1" || res.Workload.ServiceAccount != "run-run1" {
					t.Errorf("result = %+v", res)
				}
				if !slices.Equal(res.TrustUpdated, []string{testGrant.ProxyIAMRoleARN}) {
					t.Errorf("TrustUpdated = %v", res.TrustUpdated)
				}
				for _, l := range []string{"role_arn=" + testGrant.IAMRoleARN, "role_arn=" + testGrant.ProxyIAMRoleARN} {
					if !strings.Contains(res.Config.Text, l) {
						t.Errorf("config lacks %q:\n%s", l, res.Config.Text)
					}
				}
				_, asked := h.policy.calls()
				if len(asked) != 1 || asked[0].Request.Action != "map" || asked[0].Request.ID != "req-1" ||
					asked[0].Identity.ID != "u1" || asked[0].Workload.RunID != "run1" {
					t.Errorf("Grants asked with %+v", asked)
				}
			},
		},
		{name: "invalid run id", req: MapRequest{RunID: "Run_1"}, wantKind: model.KindInvalid, wantCode: "invalid_run_id"},
		{name: "run id with a wildcard", req: MapRequest{RunID: "run*"}, wantKind: model.KindInvalid, wantCode: "invalid_run_id"},
		{name: "run id missing", req: MapRequest{RunID: noRunID}, wantKind: model.KindInvalid, wantCode: "invalid_run_id"},
		{name: "invalid workload type", req: MapRequest{WorkloadType: "gpu-worker"}, wantKind: model.KindInvalid, wantCode: "invalid_workload_type"},
		{
			name:      "unknown run passes through classified",
			configure: func(h *harness) { h.workloads.err = fmt.Errorf("kube: %w", notFound) },
			wantKind:  model.KindNotFound, wantCode: "run_not_found", wantResolved: true,
			check: func(t *testing.T, _ *harness, _ MapResult, err error) {
				if !errors.Is(err, notFound) {
					t.Errorf("err = %v does not wrap the resolver's error", err)
				}
			},
		},
		{
			name:      "pod token refused passes through classified",
			configure: func(h *harness) { h.workloads.err = tokenMismatch },
			wantKind:  model.KindForbidden, wantCode: "pod_token_mismatch", wantResolved: true,
		},
		{
			name:         "foreign run allowed by policy",
			configure:    func(h *harness) { h.workloads.owner = "u2"; h.policy.allow = true },
			req:          MapRequest{RequestID: "req-2"},
			wantResolved: true, wantForeign: true, wantWrites: []string{testGrant.ProxyIAMRoleARN},
			check: func(t *testing.T, h *harness, _ MapResult, _ error) {
				allows, asked := h.policy.calls()
				in := allows[0]
				if in.Identity.ID != "u1" || in.Workload.RunID != "run1" || in.Request.ID != "req-2" {
					t.Errorf("foreign check asked with %+v", in)
				}
				if len(asked) != 1 || asked[0].Request.Action != "map" {
					t.Errorf("Grants asked with %+v, want action map", asked)
				}
			},
		},
		{
			name:      "foreign run refused by policy",
			configure: func(h *harness) { h.workloads.owner = "u2" },
			wantKind:  model.KindForbidden, wantCode: "not_workload_owner",
			wantResolved: true, wantForeign: true,
			check: func(t *testing.T, h *harness, _ MapResult, _ error) {
				if _, asked := h.policy.calls(); len(asked) != 0 {
					t.Errorf("grants decided for a refused run: %+v", asked)
				}
			},
		},
		{
			name:      "run without owner is foreign",
			configure: func(h *harness) { h.workloads.owner = "" },
			wantKind:  model.KindForbidden, wantCode: "not_workload_owner",
			wantResolved: true, wantForeign: true,
		},
		{
			name:      "run without owner, caller without id",
			configure: func(h *harness) { h.workloads.owner = "" },
			req:       MapRequest{Caller: sdk.Identity{Username: "ghost"}},
			wantKind:  model.KindForbidden, wantCode: "not_workload_owner",
			wantResolved: true, wantForeign: true,
		},
		{
			name:         "run without owner allowed by policy",
			configure:    func(h *harness) { h.workloads.owner = ""; h.policy.allow = true },
			wantResolved: true, wantForeign: true, wantWrites: []string{testGrant.ProxyIAMRoleARN},
		},
		{
			name:      "foreign check failing is internal",
			configure: func(h *harness) { h.workloads.owner = "u2"; h.policy.allowErr = policyDown },
			wantKind:  model.KindInternal, wantCode: "internal",
			wantResolved: true, wantForeign: true,
			check: func(t *testing.T, _ *harness, _ MapResult, err error) {
				if !errors.Is(err, policyDown) {
					t.Errorf("err = %v does not wrap the policy's error", err)
				}
			},
		},
		{
			name:      "grants decision failing is internal",
			configure: func(h *harness) { h.policy.grantsErr = policyDown },
			wantKind:  model.KindInternal, wantCode: "internal",
			wantResolved: true,
		},
		{
			name:      "mapping store failing passes through classified",
			configure: func(h *harness) { h.store.err = model.Errorf(model.KindUnavailable, "mappings_unavailable", "down") },
			wantKind:  model.KindUnavailable, wantCode: "mappings_unavailable",
			wantResolved: true,
		},
		{
			name:         "no grants: empty config, no writes",
			configure:    func(h *harness) { h.policy.grants = nil },
			wantResolved: true,
			check: func(t *testing.T, _ *harness, res MapResult, _ error) {
				if res.Config.Text != "" || len(res.Config.Profiles) != 0 || res.TrustUpdated != nil {
					t.Errorf("result = %+v, want an empty config", res)
				}
			},
		},
		{
			name: "grants without trust update: rendered, not written",
			configure: func(h *harness) {
				h.policy.grants = []model.Grant{grant(testGrant.IAMRoleARN, proxyA, false)}
			},
			wantResolved: true,
			check: func(t *testing.T, _ *harness, res MapResult, _ error) {
				if !strings.Contains(res.Config.Text, "role_arn="+proxyA) || len(res.TrustUpdated) != 0 {
					t.Errorf("result = %+v", res)
				}
			},
		},
		{
			name: "duplicate proxy roles written once",
			configure: func(h *harness) {
				h.policy.grants = []model.Grant{
					grant("arn:aws:iam::524112250363:role/a1", proxyB, true),
					grant("arn:aws:iam::524112250363:role/a2", proxyA, true),
					grant("arn:aws:iam::524112250363:role/a3", proxyB, true),
					grant("arn:aws:iam::524112250363:role/a4", proxyC, false),
				}
			},
			wantResolved: true, wantWrites: []string{proxyA, proxyB},
			check: func(t *testing.T, _ *harness, res MapResult, _ error) {
				if !slices.Equal(res.TrustUpdated, []string{proxyA, proxyB}) || len(res.Config.Profiles) != 4 {
					t.Errorf("TrustUpdated = %v, profiles = %v", res.TrustUpdated, res.Config.Profiles)
				}
			},
		},
		{
			name:         "dry run renders without writing",
			req:          MapRequest{DryRun: true},
			wantResolved: true,
			check: func(t *testing.T, h *harness, res MapResult, _ error) {
				if !strings.Contains(res.Config.Text, "role_arn="+testGrant.IAMRoleARN) || res.TrustUpdated != nil {
					t.Errorf("result = %+v", res)
				}
				if _, asked := h.policy.calls(); asked[0].Request.Action != "preview" {
					t.Errorf("Grants asked with action %q, want preview", asked[0].Request.Action)
				}
			},
		},
		{
			name: "malformed grant is invalid_grant, nothing written",
			configure: func(h *harness) {
				h.policy.grants = []model.Grant{testGrant, grant("not-an-arn", proxyA, true)}
			},
			wantKind: model.KindInvalid, wantCode: "invalid_grant", wantResolved: true,
		},
		{
			name:         "legacy subjects",
			configure:    func(h *harness) { h.o.LegacySubjects = true },
			wantResolved: true, wantWrites: []string{testGrant.ProxyIAMRoleARN},
			check: func(t *testing.T, h *harness, res MapResult, _ error) {
				const legacy = "*:domino-compute:run-run1"
				if _, _, subjects := h.trust.roles(); res.Subject != legacy || !slices.Equal(subjects, []string{legacy}) {
					t.Errorf("subject = %q, written %v, want %q", res.Subject, subjects, legacy)
				}
			},
		},
		{
			name:      "trust write failing passes through classified",
			configure: func(h *harness) { h.trust.fail = map[string]error{testGrant.ProxyIAMRoleARN: tooLarge} },
			wantKind:  model.KindConflict, wantCode: "trust_policy_too_large",
			wantResolved: true, wantWrites: []string{testGrant.ProxyIAMRoleARN},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.configure)
			req := tt.req
			if req.Caller.ID == "" && req.Caller.Username == "" {
				req.Caller = alice
			}
			switch req.RunID {
			case "":
				req.RunID = "run1"
			case noRunID:
				req.RunID = ""
			}
			res, err := h.svc.Map(context.Background(), req)
			wantClassified(t, err, tt.wantKind, tt.wantCode)

			if got := len(h.workloads.resolved()) > 0; got != tt.wantResolved {
				t.Errorf("resolver asked: %v, want %v", got, tt.wantResolved)
			}
			allows, _ := h.policy.calls()
			for _, in := range allows {
				if in.Request.Action != ActionMapForeignWorkload {
					t.Errorf("Allow asked for %q, want %q", in.Request.Action, ActionMapForeignWorkload)
				}
			}
			if got := len(allows) > 0; got != tt.wantForeign {
				t.Errorf("foreign check asked: %v, want %v", got, tt.wantForeign)
			}
			ensured, removed, subjects := h.trust.roles()
			if !slices.Equal(ensured, tt.wantWrites) || len(removed) != 0 {
				t.Errorf("EnsureAdded on %v, Remove on %v; want EnsureAdded on %v only", ensured, removed, tt.wantWrites)
			}
			if !h.o.LegacySubjects {
				for _, s := range subjects {
					if s != subject {
						t.Errorf("wrote subject %q, want %q", s, subject)
					}
				}
			}

			failed := 0.0
			outcome := "success"
			if err != nil {
				failed, outcome = 1, "error"
			}
			if req.DryRun {
				outcome = "preview_" + outcome
			}
			if got := counterValue(t, h.metrics.MappingRequests); got != 1 {
				t.Errorf("MappingRequests = %v, want 1", got)
			}
			if got := counterValue(t, h.metrics.FailedMappingRequests); got != failed {
				t.Errorf("FailedMappingRequests = %v, want %v", got, failed)
			}
			if got := mapOutcomes(t, h.metrics); len(got) != 1 || got[outcome] != 1 {
				t.Errorf("MapDuration observations = %v, want one %q", got, outcome)
			}
			if tt.check != nil {
				tt.check(t, h, res, err)
			}
		})
	}
}

// The counters accumulate over requests: every Map counts, failed ones
// count twice.
func TestMapCounters(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, id := range []string{"run1", "BAD", "run2", "run*"} {
		_, _ = h.svc.Map(ctx, MapRequest{Caller: alice, RunID: id})
	}
	if got := counterValue(t, h.metrics.MappingRequests); got != 4 {
		t.Errorf("MappingRequests = %v, want 4", got)
	}
	if got := counterValue(t, h.metrics.FailedMappingRequests); got != 2 {
		t.Errorf("FailedMappingRequests = %v, want 2", got)
	}
}

// A map request that fails on one proxy role takes its subject out again
// from exactly the roles where it added it (docs/design/map-atomicity.md),
// with a context of its own.
func TestMapUndoesPartialTrustWrites(t *testing.T) {
	const subject = "system:serviceaccount:domino-compute:run-run1"
	errA := model.Errorf(model.KindThrottled, "iam_throttled", "IAM throttled proxy-a")
	errB := model.Errorf(model.KindMisconfigured, "proxy_role_unusable", "proxy-b is not federated")
	errC := model.Errorf(model.KindConflict, "trust_policy_too_large", "proxy-c: 2100 > 2048")

	tests := []struct {
		name    string
		present []string
		fail    map[string]error
		// cancel: the failing role cancels the request's context.
		cancel      bool
		wantErrs    []error
		wantRemoved []string
	}{
		{name: "no failure, nothing undone", present: []string{proxyB}},
		{
			name: "one added, one already there, one failing", present: []string{proxyB},
			fail: map[string]error{proxyC: errC}, wantErrs: []error{errC}, wantRemoved: []string{proxyA},
		},
		{
			name: "two added, one failing", fail: map[string]error{proxyB: errB},
			wantErrs: []error{errB}, wantRemoved: []string{proxyA, proxyC},
		},
		{
			name: "failing role cancels the request", present: []string{proxyB},
			fail: map[string]error{proxyC: errC}, cancel: true, wantErrs: []error{errC}, wantRemoved: []string{proxyA},
		},
		{
			name: "two failing, one added", fail: map[string]error{proxyA: errA, proxyC: errC},
			wantErrs: []error{errA, errC}, wantRemoved: []string{proxyB},
		},
		{
			name: "every role failing", fail: map[string]error{proxyA: errA, proxyB: errB, proxyC: errC},
			wantErrs: []error{errA, errB, errC},
		},
		{
			name: "already everywhere but one failing", present: []string{proxyA, proxyB},
			fail: map[string]error{proxyC: errC}, wantErrs: []error{errC},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := newHarness(t, func(h *harness) {
				h.policy.grants = []model.Grant{
					grant("arn:aws:iam::524112250363:role/a", proxyA, true),
					grant("arn:aws:iam::524112250363:role/b", proxyB, true),
					grant("arn:aws:iam::524112250363:role/c", proxyC, true),
				}
				h.trust.present = map[string]bool{}
				for _, r := range tt.present {
					h.trust.present[r] = true
				}
				h.trust.fail = tt.fail
				if tt.cancel {
					h.trust.onFail = cancel
				}
			})
			res, err := h.svc.Map(ctx, MapRequest{Caller: alice, RunID: "run1"})

			ensured, removed, subjects := h.trust.roles()
			if !slices.Equal(ensured, []string{proxyA, proxyB, proxyC}) {
				t.Errorf("EnsureAdded on %v, want all three roles", ensured)
			}
			if !slices.Equal(removed, tt.wantRemoved) {
				t.Errorf("removed from %v, want %v", removed, tt.wantRemoved)
			}
			for _, s := range subjects {
				if s != subject {
					t.Errorf("trust call with subject %q, want %q", s, subject)
				}
			}
			if tt.cancel && ctx.Err() == nil {
				t.Fatal("the failing role did not cancel the request")
			}
			if len(tt.wantErrs) == 0 {
				if err != nil || !slices.Equal(res.TrustUpdated, []string{proxyA, proxyB, proxyC}) {
					t.Fatalf("Map = %+v, %v", res, err)
				}
				return
			}
			if err == nil {
				t.Fatal("Map succeeded, want the failing role's error")
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) || !strings.Contains(err.Error(), want.Error()) {
					t.Errorf("err = %q, want it to name %q", err, want)
				}
			}
			// The error keeps the failing role's classification.
			wantKind, wantCode, _ := tt.wantErrs[0].(*model.Error).Classify()
			wantClassified(t, err, wantKind, wantCode)
			if res.TrustUpdated != nil {
				t.Errorf("TrustUpdated = %v on failure", res.TrustUpdated)
			}
		})
	}
}

// An undo that fails is logged; the request still answers the original error.
func TestMapUndoFailingKeepsTheOriginalError(t *testing.T) {
	errB := model.Errorf(model.KindConflict, "trust_policy_too_large", "proxy-b full")
	h := newHarness(t, func(h *harness) {
		h.policy.grants = []model.Grant{grant(testGrant.IAMRoleARN, proxyA, true), grant(testGrant.IAMRoleARN, proxyB, true)}
		h.trust.fail = map[string]error{proxyB: errB}
		h.trust.removeErr = errors.New("iam: remove failed")
	})
	_, err := h.svc.Map(context.Background(), MapRequest{Caller: alice, RunID: "run1"})
	wantClassified(t, err, model.KindConflict, "trust_policy_too_large")
	if strings.Contains(err.Error(), "remove failed") {
		t.Errorf("err = %v names the undo's failure", err)
	}
}

func TestAuthenticate(t *testing.T) {
	other := errors.New("plugin crashed")
	tests := []struct {
		name     string
		auth     fakeAuth
		wantKind model.Kind
		wantCode string
	}{
		{name: "authenticated", auth: fakeAuth{id: alice}},
		{name: "unauthenticated", auth: fakeAuth{err: fmt.Errorf("domino: %w", sdk.ErrUnauthenticated)}, wantKind: model.KindUnauthenticated, wantCode: "unauthenticated"},
		{name: "provider unavailable", auth: fakeAuth{err: fmt.Errorf("%w: connection refused", sdk.ErrUnavailable)}, wantKind: model.KindUnavailable, wantCode: "identity_unavailable"},
		{name: "any other error", auth: fakeAuth{err: other}, wantKind: model.KindUnavailable, wantCode: "identity_unavailable"},
		// Ownership compares user ids: "" would match every pod without the
		// starting-user label.
		{name: "identity without id", auth: fakeAuth{id: sdk.Identity{Username: "ghost"}}, wantKind: model.KindUpstream, wantCode: "identity_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.o.Auth = tt.auth })
			id, err := h.svc.Authenticate(context.Background(), sdk.Credentials{Token: "t"})
			wantClassified(t, err, tt.wantKind, tt.wantCode)
			if err == nil && id.ID != alice.ID {
				t.Errorf("identity = %+v", id)
			}
			if err != nil && (id.ID != "" || id.Username != "") {
				t.Errorf("identity %+v returned with an error", id)
			}
			if tt.auth.err != nil && !errors.Is(err, tt.auth.err) {
				t.Errorf("err = %v does not wrap the provider's error", err)
			}
		})
	}
}

func TestMyGrants(t *testing.T) {
	snap := model.Snapshot{Revision: "7"}
	h := newHarness(t, func(h *harness) { h.store.snap = snap })
	dec, got, err := h.svc.MyGrants(context.Background(), alice, "req-3")
	if err != nil || dec.ID != "d1" || len(dec.Grants) != 1 || got.Revision != "7" {
		t.Fatalf("MyGrants = %+v, %+v, %v", dec, got, err)
	}
	if _, asked := h.policy.calls(); asked[0].Request.Action != "my_mappings" || asked[0].Request.ID != "req-3" || asked[0].Identity.ID != "u1" {
		t.Errorf("Grants asked with %+v", asked[0])
	}
	if got := counterValue(t, h.metrics.QueryConfigMap); got != 1 {
		t.Errorf("QueryConfigMap = %v, want 1", got)
	}

	h = newHarness(t, func(h *harness) { h.policy.grantsErr = errors.New("opa down") })
	_, _, err = h.svc.MyGrants(context.Background(), alice, "req-3")
	wantClassified(t, err, model.KindInternal, "internal")
}

var validMapping = model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: testGrant.IAMRoleARN, ProxyIAMRoleARN: proxyA, UpdateTrustPolicy: true}}}

// Every admin use case asks the policy first; refused, it touches nothing.
func TestAdminUseCasesNeedPolicy(t *testing.T) {
	ops := []struct {
		name, action string
		call         func(ctx context.Context, s *Service) error
	}{
		{"Mappings", ActionMappingRead, func(ctx context.Context, s *Service) error {
			_, err := s.Mappings(ctx, alice, "req-9")
			return err
		}},
		{"PutMapping", ActionMappingWrite, func(ctx context.Context, s *Service) error { return s.PutMapping(ctx, alice, validMapping, "req-9") }},
		{"DeleteMapping", ActionMappingDelete, func(ctx context.Context, s *Service) error { return s.DeleteMapping(ctx, alice, "acme", "req-9") }},
		{"ApplyMappings", ActionMappingWrite, func(ctx context.Context, s *Service) error {
			_, err := s.ApplyMappings(ctx, alice, model.Batch{Put: []model.Mapping{validMapping}}, "req-9")
			return err
		}},
		{"CreateServiceAccount", ActionServiceAccountWrite, func(ctx context.Context, s *Service) error {
			return s.CreateServiceAccount(ctx, alice, "sa-1", "req-9")
		}},
		{"DeleteServiceAccount", ActionServiceAccountDelete, func(ctx context.Context, s *Service) error {
			return s.DeleteServiceAccount(ctx, alice, "sa-1", "req-9")
		}},
	}
	decisions := []struct {
		name     string
		allow    bool
		allowErr error
		wantKind model.Kind
		wantCode string
	}{
		{name: "allowed", allow: true},
		{name: "refused", wantKind: model.KindForbidden, wantCode: "forbidden"},
		{name: "policy failing", allowErr: errors.New("opa down"), wantKind: model.KindInternal, wantCode: "internal"},
	}
	for _, op := range ops {
		for _, d := range decisions {
			t.Run(op.name+"/"+d.name, func(t *testing.T) {
				h := newHarness(t, func(h *harness) {
					h.policy.allow, h.policy.allowErr = d.allow, d.allowErr
					h.o.ProxyRoles, h.o.ServiceAccounts = h.proxies, h.sas
				})
				err := op.call(context.Background(), h.svc)
				wantClassified(t, err, d.wantKind, d.wantCode)
				allows, _ := h.policy.calls()
				if len(allows) != 1 || allows[0].Request.Action != op.action || allows[0].Request.ID != "req-9" || allows[0].Identity.ID != "u1" {
					t.Errorf("Allow asked with %+v, want once for %s", allows, op.action)
				}
				touched := h.store.touched() || len(h.proxies.verified)+len(h.sas.created)+len(h.sas.deleted) > 0
				if touched != d.allow {
					t.Errorf("store, proxy roles or service accounts touched: %v, want %v", touched, d.allow)
				}
			})
		}
	}
}

func TestPutMapping(t *testing.T) {
	pair := func(proxy string, update bool) model.RolePair {
		return model.RolePair{IAMRoleARN: testGrant.IAMRoleARN, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: update}
	}
	unusable := model.Errorf(model.KindMisconfigured, "proxy_role_unusable", "IAM has no role proxy-c")
	tests := []struct {
		name         string
		m            model.Mapping
		noVerifier   bool
		fail         map[string]error
		storeErr     error
		wantKind     model.Kind
		wantCode     string
		wantVerified []string
		wantStored   bool
		wantInError  string // the message the caller sees contains it
	}{
		{name: "single pair", m: validMapping, wantVerified: []string{proxyA}, wantStored: true},
		{
			name:         "pairs without trust update are not verified",
			m:            model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{pair(proxyA, true), pair(proxyB, false), pair(proxyC, true)}},
			wantVerified: []string{proxyA, proxyC}, wantStored: true,
		},
		{name: "no verifier configured", m: validMapping, noVerifier: true, wantStored: true},
		{name: "missing org", m: model.Mapping{Pairs: validMapping.Pairs}, wantKind: model.KindInvalid, wantCode: "invalid_mapping"},
		{name: "org with a wildcard", m: model.Mapping{Org: "ac*me", Pairs: validMapping.Pairs}, wantKind: model.KindInvalid, wantCode: "invalid_mapping"},
		{name: "no pairs", m: model.Mapping{Org: "acme"}, wantKind: model.KindInvalid, wantCode: "invalid_mapping"},
		{
			name: "malformed proxy ARN", m: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair("arn:aws:iam::1:role/x", true)}},
			wantKind: model.KindInvalid, wantCode: "invalid_mapping", wantInError: "proxy_iam_role_arn",
		},
		{
			name: "malformed ARN in the second pair", m: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair(proxyA, true), pair("nope", true)}},
			wantKind: model.KindInvalid, wantCode: "invalid_mapping", wantInError: "role pair 2",
		},
		{
			name: "unusable proxy role, single pair", m: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair(proxyC, true)}},
			fail: map[string]error{proxyC: unusable}, wantKind: model.KindMisconfigured, wantCode: "proxy_role_unusable",
			wantVerified: []string{proxyC}, wantInError: "proxy_iam_role_arn: IAM has no role proxy-c",
		},
		{
			name: "unusable proxy role in pair 3",
			m:    model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{pair(proxyA, true), pair(proxyB, false), pair(proxyC, true)}},
			fail: map[string]error{proxyC: unusable}, wantKind: model.KindMisconfigured, wantCode: "proxy_role_unusable",
			wantVerified: []string{proxyA, proxyC}, wantInError: "role pair 3: proxy_iam_role_arn: IAM has no role proxy-c",
		},
		{
			// The pools of the other mappings cannot be checked: nothing is
			// verified nor written.
			name: "store failing passes through", m: validMapping, storeErr: model.Errorf(model.KindUnavailable, "mappings_unavailable", "down"),
			wantKind: model.KindUnavailable, wantCode: "mappings_unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) {
				h.policy.allow = true
				h.proxies.fail = tt.fail
				h.store.err = tt.storeErr
				if !tt.noVerifier {
					h.o.ProxyRoles = h.proxies
				}
			})
			err := h.svc.PutMapping(context.Background(), alice, tt.m, "req-4")
			wantClassified(t, err, tt.wantKind, tt.wantCode)
			if _, _, msg := model.Classify(err); tt.wantInError != "" && !strings.Contains(msg, tt.wantInError) {
				t.Errorf("message the caller sees = %q, want it to contain %q", msg, tt.wantInError)
			}
			if single := len(tt.m.Pairs) == 1; single && err != nil && strings.Contains(err.Error(), "role pair") {
				t.Errorf("err = %q names a pair number for a single-pair mapping", err)
			}
			if !slices.Equal(h.proxies.verified, tt.wantVerified) {
				t.Errorf("verified %v, want %v", h.proxies.verified, tt.wantVerified)
			}
			if stored := len(h.store.puts) > 0; stored != tt.wantStored {
				t.Fatalf("stored: %v, want %v", stored, tt.wantStored)
			}
			if tt.wantStored && !slices.Equal(h.store.puts[0].Pairs, tt.m.Pairs) {
				t.Errorf("stored %+v, want %+v", h.store.puts[0], tt.m)
			}
		})
	}
}

func TestApplyMappings(t *testing.T) {
	pair := func(proxy string) model.RolePair {
		return model.RolePair{IAMRoleARN: testGrant.IAMRoleARN, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: true}
	}
	org := func(name, proxy string) model.Mapping {
		return model.Mapping{Org: name, Pairs: []model.RolePair{pair(proxy)}}
	}
	unusable := model.Errorf(model.KindMisconfigured, "proxy_role_unusable", "IAM has no role proxy-c")
	pool := model.Mapping{Org: "pooled", Pairs: []model.RolePair{{IAMRoleARN: testGrant.IAMRoleARN, ProxyIAMRoleARN: proxyA, UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "p", Members: []string{proxyA, proxyC}}}}}
	tests := []struct {
		name         string
		b            model.Batch
		deny         string // the action the policy refuses
		fail         map[string]error
		wantKind     model.Kind
		wantCode     string
		wantInError  string
		wantVerified []string
		wantAllows   []string
	}{
		{
			name: "puts and deletes", b: model.Batch{Put: []model.Mapping{org("a", proxyA), org("b", proxyB)}, Delete: []string{"c"}, IfRevision: "7"},
			wantVerified: []string{proxyA, proxyB}, wantAllows: []string{ActionMappingWrite, ActionMappingDelete},
		},
		{
			name: "a refused org names it and nothing is written", b: model.Batch{Put: []model.Mapping{org("a", proxyA), org("zz", proxyC), org("b", proxyB)}},
			fail: map[string]error{proxyC: unusable}, wantKind: model.KindMisconfigured, wantCode: "proxy_role_unusable",
			wantInError: `org "zz": proxy_iam_role_arn: IAM has no role proxy-c`, wantVerified: []string{proxyA, proxyC}, wantAllows: []string{ActionMappingWrite},
		},
		{
			name: "every member of a pool is verified", b: model.Batch{Put: []model.Mapping{pool}},
			fail: map[string]error{proxyC: unusable}, wantKind: model.KindMisconfigured, wantCode: "proxy_role_unusable",
			wantInError: `org "pooled": proxy_pool.members[1]`, wantVerified: []string{proxyA, proxyC}, wantAllows: []string{ActionMappingWrite},
		},
		{
			name: "an invalid mapping is refused before IAM is asked", b: model.Batch{Put: []model.Mapping{org("a", proxyA), org("b", "nope")}},
			wantKind: model.KindInvalid, wantCode: "invalid_mapping", wantInError: `org "b": proxy_iam_role_arn`, wantAllows: []string{ActionMappingWrite},
		},
		{
			name: "deleting needs mapping.delete too", b: model.Batch{Put: []model.Mapping{org("a", proxyA)}, Delete: []string{"c"}}, deny: ActionMappingDelete,
			wantKind: model.KindForbidden, wantCode: "forbidden", wantAllows: []string{ActionMappingWrite, ActionMappingDelete},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) {
				h.policy.allow = true
				h.policy.deny = tt.deny
				h.proxies.fail = tt.fail
				h.o.ProxyRoles = h.proxies
			})
			rev, err := h.svc.ApplyMappings(context.Background(), alice, tt.b, "req-5")
			wantClassified(t, err, tt.wantKind, tt.wantCode)
			if _, _, msg := model.Classify(err); tt.wantInError != "" && !strings.Contains(msg, tt.wantInError) {
				t.Errorf("message the caller sees = %q, want it to contain %q", msg, tt.wantInError)
			}
			if !slices.Equal(h.proxies.verified, tt.wantVerified) {
				t.Errorf("verified %v, want %v", h.proxies.verified, tt.wantVerified)
			}
			allows, _ := h.policy.calls()
			var actions []string
			for _, a := range allows {
				actions = append(actions, a.Request.Action)
			}
			if !slices.Equal(actions, tt.wantAllows) {
				t.Errorf("asked the policy for %v, want %v", actions, tt.wantAllows)
			}
			if err != nil {
				if len(h.store.batches)+len(h.store.puts)+len(h.store.deletes) > 0 {
					t.Errorf("a refused batch reached the store: %+v", h.store.batches)
				}
				return
			}
			if rev != "applied" || len(h.store.batches) != 1 || !reflect.DeepEqual(h.store.batches[0], tt.b) || len(h.store.puts)+len(h.store.deletes) > 0 {
				t.Errorf("revision %q, store saw batches %+v puts %v deletes %v; want the batch once", rev, h.store.batches, h.store.puts, h.store.deletes)
			}
		})
	}
}

func TestDeleteMapping(t *testing.T) {
	gone := model.Errorf(model.KindNotFound, "mapping_not_found", "no mapping for acme")
	tests := []struct {
		name, org   string
		storeErr    error
		wantKind    model.Kind
		wantCode    string
		wantDeleted []string
	}{
		{name: "deleted", org: "acme", wantDeleted: []string{"acme"}},
		{name: "empty org", org: "", wantKind: model.KindInvalid, wantCode: "missing_field"},
		{name: "store error passes through", org: "acme", storeErr: gone, wantKind: model.KindNotFound, wantCode: "mapping_not_found", wantDeleted: []string{"acme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.policy.allow = true; h.store.err = tt.storeErr })
			err := h.svc.DeleteMapping(context.Background(), alice, tt.org, "req-5")
			wantClassified(t, err, tt.wantKind, tt.wantCode)
			if !slices.Equal(h.store.deletes, tt.wantDeleted) {
				t.Errorf("deleted %v, want %v", h.store.deletes, tt.wantDeleted)
			}
		})
	}
}

func TestServiceAccounts(t *testing.T) {
	missing := model.Errorf(model.KindNotFound, "service_account_not_found", "not managed here")
	tests := []struct {
		name      string
		create    bool
		account   string
		noManager bool
		sasErr    error
		wantKind  model.Kind
		wantCode  string
		wantCall  bool
	}{
		{name: "create", create: true, account: "sa-1", wantCall: true},
		{name: "delete", account: "sa-1", wantCall: true},
		{name: "create without a manager", create: true, account: "sa-1", noManager: true, wantKind: model.KindUnavailable, wantCode: "service_accounts_unavailable"},
		{name: "delete without a manager", account: "sa-1", noManager: true, wantKind: model.KindUnavailable, wantCode: "service_accounts_unavailable"},
		{name: "create with an invalid name", create: true, account: "Bad_Name", wantKind: model.KindInvalid, wantCode: "invalid_service_account_name"},
		{name: "delete with a wildcard", account: "sa-*", wantKind: model.KindInvalid, wantCode: "invalid_service_account_name"},
		{name: "empty name", create: true, account: "", wantKind: model.KindInvalid, wantCode: "invalid_service_account_name"},
		{name: "manager error passes through", account: "sa-1", sasErr: missing, wantKind: model.KindNotFound, wantCode: "service_account_not_found", wantCall: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) {
				h.policy.allow = true
				h.sas.err = tt.sasErr
				if !tt.noManager {
					h.o.ServiceAccounts = h.sas
				}
			})
			var err error
			if tt.create {
				err = h.svc.CreateServiceAccount(context.Background(), alice, tt.account, "req-6")
			} else {
				err = h.svc.DeleteServiceAccount(context.Background(), alice, tt.account, "req-6")
			}
			wantClassified(t, err, tt.wantKind, tt.wantCode)
			calls, other := h.sas.deleted, h.sas.created
			if tt.create {
				calls, other = other, calls
			}
			if len(other) != 0 || (len(calls) == 1 && calls[0] == tt.account) != tt.wantCall || len(calls) > 1 {
				t.Errorf("created %v, deleted %v; want one call for %q: %v", h.sas.created, h.sas.deleted, tt.account, tt.wantCall)
			}
		})
	}
}

// --role-session-name-from-user: a username STS would refuse is made valid
// instead of failing every map with invalid_grant.
func TestRoleSessionNameFromUserIsSanitised(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.o.RoleSessionNameFromUser = true })
	res, err := h.svc.Map(context.Background(), MapRequest{Caller: sdk.Identity{ID: "u1", Username: "Jane Doe/ops"}, RunID: "run1"})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if want := "role_session_name = " + awsconfig.SessionName("Jane Doe/ops"); !strings.Contains(res.Config.Text, want) {
		t.Fatalf("config lacks %q:\n%s", want, res.Config.Text)
	}
}
