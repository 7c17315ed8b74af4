package broker

import (
	"context"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Fakes of the broker's narrow interfaces: pure logic, no I/O.

type fakeAuth struct{ id sdk.Identity }

func (f fakeAuth) Authenticate(context.Context, sdk.Credentials) (sdk.Identity, error) {
	return f.id, nil
}

type fakeWorkloads struct{ owner string }

func (f fakeWorkloads) Resolve(_ context.Context, req model.WorkloadRequest) (model.Workload, error) {
	return model.Workload{RunID: req.RunID, Namespace: "domino-compute", ServiceAccount: "run-" + req.RunID, OwnerID: f.owner}, nil
}

type fakePolicy struct {
	grants []model.Grant
	allow  bool
}

func (f fakePolicy) Grants(context.Context, policy.Input, model.Snapshot) (policy.Decision, error) {
	return policy.Decision{ID: "d1", Grants: f.grants}, nil
}

func (f fakePolicy) Allow(context.Context, policy.Input) (bool, error) { return f.allow, nil }

type fakeTrust struct{ added []string }

func (f *fakeTrust) EnsureAdded(_ context.Context, role string, subjects ...string) (bool, error) {
	f.added = append(f.added, role)
	return true, nil
}

func (f *fakeTrust) Remove(context.Context, string, ...string) error { return nil }

var testGrant = model.Grant{Org: "o", RolePair: model.RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/a", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/p", UpdateTrustPolicy: true}}

func newTestService(t *testing.T, id sdk.Identity, owner string, o func(*Options)) (*Service, *fakeTrust) {
	t.Helper()
	tr := &fakeTrust{}
	opts := Options{Auth: fakeAuth{id}, Workloads: fakeWorkloads{owner}, Policy: fakePolicy{grants: []model.Grant{testGrant}},
		Mappings: mapping.NewMemoryStore(), Trust: tr}
	if o != nil {
		o(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, tr
}

// A provider answering an identity without a user id is refused: ownership
// compares ids, and "" would match every pod without the starting-user label.
func TestIdentityWithoutIDIsRefused(t *testing.T) {
	s, _ := newTestService(t, sdk.Identity{Username: "ghost"}, "", nil)
	_, err := s.Authenticate(context.Background(), sdk.Credentials{Token: "t"})
	if kind, code, _ := model.Classify(err); kind != model.KindUpstream || code != "identity_invalid" {
		t.Fatalf("Authenticate = %v, want identity_invalid", err)
	}
}

// A run whose pod records no owner belongs to nobody, even to a caller
// whose id is empty.
func TestRunWithoutOwnerIsForeign(t *testing.T) {
	for _, caller := range []sdk.Identity{{ID: "", Username: "ghost"}, {ID: "u1", Username: "alice"}} {
		s, tr := newTestService(t, sdk.Identity{}, "", nil)
		_, err := s.Map(context.Background(), MapRequest{Caller: caller, RunID: "run1"})
		if _, code, _ := model.Classify(err); code != "not_workload_owner" {
			t.Errorf("caller %q: Map = %v, want not_workload_owner", caller.ID, err)
		}
		if len(tr.added) != 0 {
			t.Errorf("caller %q: trust written for an unowned run: %v", caller.ID, tr.added)
		}
	}
}

// --role-session-name-from-user: a username STS would refuse is made valid
// instead of failing every map with invalid_grant.
func TestRoleSessionNameFromUserIsSanitised(t *testing.T) {
	s, _ := newTestService(t, sdk.Identity{}, "u1", func(o *Options) { o.RoleSessionNameFromUser = true })
	res, err := s.Map(context.Background(), MapRequest{Caller: sdk.Identity{ID: "u1", Username: "Jane Doe/ops"}, RunID: "run1"})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if want := "role_session_name = " + awsconfig.SessionName("Jane Doe/ops"); !strings.Contains(res.Config.Text, want) {
		t.Fatalf("config lacks %q:\n%s", want, res.Config.Text)
	}
}
