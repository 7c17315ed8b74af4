package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
)

// fakePools places every subject of a pool on member `on` (the pair's key →
// member), delegating single roles to the trust writer.
type fakePools struct {
	trust *fakeTrust
	on    map[string]string
	fail  map[string]error // by pool name

	mu     sync.Mutex
	placed []string // pool names
}

func (f *fakePools) Place(ctx context.Context, pair model.RolePair, subject string) (string, bool, error) {
	if !pair.IsPool() {
		added, err := f.trust.EnsureAdded(ctx, pair.ProxyIAMRoleARN, subject)
		return pair.ProxyIAMRoleARN, added, err
	}
	f.mu.Lock()
	f.placed = append(f.placed, pair.PoolName())
	f.mu.Unlock()
	if err := f.fail[pair.PoolName()]; err != nil {
		return "", false, err
	}
	return f.on[pair.PoolName()], true, nil
}

func (f *fakePools) Members(_ context.Context, pair model.RolePair) ([]string, error) {
	if created, ok := f.on[pair.PoolName()+"/created"]; ok {
		return append(slices.Clone(pair.ProxyMembers()), created), nil
	}
	return pair.ProxyMembers(), nil
}

func (f *fakePools) Inspect(_ context.Context, role string) (model.RoleTrust, error) {
	if role == proxyC {
		return model.RoleTrust{}, model.Errorf(model.KindMisconfigured, "iam_no_such_role", "no role %s", role)
	}
	return model.RoleTrust{Role: role, Subjects: []string{"system:serviceaccount:domino-compute:run-7"}, Size: 1024, Quota: 2048}, nil
}

func (f *fakePools) RolesUsage(context.Context) (int, int, error) { return 10, 1000, nil }

const (
	assetX = "arn:aws:iam::524112250363:role/x"
	assetY = "arn:aws:iam::524112250363:role/y"
)

func poolGrant(asset string, members ...string) (model.Grant, model.RolePair) {
	p := model.RolePair{IAMRoleARN: asset, ProxyIAMRoleARN: members[0], UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "pool-x", Members: members}}
	// Policies return pairs without pools.
	return model.Grant{Org: "o", RolePair: model.RolePair{IAMRoleARN: asset, ProxyIAMRoleARN: members[0], UpdateTrustPolicy: true}}, p
}

// TestMapRendersThePlacedMember: the config of a run names the member of the
// pool that holds its subject; two pairs sharing one pool place once; a
// single role beside them is ensured as before.
func TestMapRendersThePlacedMember(t *testing.T) {
	g1, pair1 := poolGrant(assetX, proxyA, proxyB)
	pair2 := pair1
	pair2.IAMRoleARN = assetY
	g2 := g1
	g2.IAMRoleARN = assetY
	single := grant("arn:aws:iam::524112250363:role/z", proxyC, true)
	var fp *fakePools
	h := newHarness(t, func(h *harness) {
		h.policy.grants = []model.Grant{g1, g2, single}
		h.store.snap = model.Snapshot{Mappings: map[string]model.Mapping{"o": {Org: "o", Pairs: []model.RolePair{pair1, pair2, single.RolePair}}}}
		fp = &fakePools{trust: h.trust, on: map[string]string{"pool-x": proxyB}}
		h.o.Pools = fp
	})
	res, err := h.svc.Map(context.Background(), MapRequest{Caller: alice, RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fp.placed) != 1 {
		t.Fatalf("pool placed %d times, want once for two pairs sharing it", len(fp.placed))
	}
	if strings.Contains(res.Config.Text, proxyA) || strings.Count(res.Config.Text, proxyB) != 2 || !strings.Contains(res.Config.Text, proxyC) {
		t.Fatalf("config does not name the placed member:\n%s", res.Config.Text)
	}
	if !slices.Equal(res.TrustUpdated, []string{proxyB, proxyC}) {
		t.Fatalf("TrustUpdated = %v", res.TrustUpdated)
	}
	if res.Grants[0].ProxyPool == nil || res.Grants[2].ProxyPool != nil {
		t.Fatalf("grants carry their mapping's pool: %+v", res.Grants)
	}
	if ensured, _, _ := h.trust.roles(); !slices.Equal(ensured, []string{proxyC}) {
		t.Fatalf("ensured %v", ensured)
	}
}

// TestMapPoolFailureUndoes: a full pool fails the request with its 409, and
// the single role where the subject was added is undone.
func TestMapPoolFailureUndoes(t *testing.T) {
	g1, pair1 := poolGrant(assetX, proxyA, proxyB)
	single := grant(assetY, proxyC, true)
	full := model.Errorf(model.KindConflict, "proxy_pool_full", "proxy pool pool-x is full")
	h := newHarness(t, func(h *harness) {
		h.policy.grants = []model.Grant{g1, single}
		h.store.snap = model.Snapshot{Mappings: map[string]model.Mapping{"o": {Org: "o", Pairs: []model.RolePair{pair1, single.RolePair}}}}
		h.o.Pools = &fakePools{trust: h.trust, fail: map[string]error{"pool-x": full}}
	})
	_, err := h.svc.Map(context.Background(), MapRequest{Caller: alice, RunID: "r1"})
	wantClassified(t, err, model.KindConflict, "proxy_pool_full")
	if _, removed, _ := h.trust.roles(); !slices.Equal(removed, []string{proxyC}) {
		t.Fatalf("undone on %v, want [%s]", removed, proxyC)
	}
}

// TestMapPoolWithoutPlacer: without a placer a pool is its first member.
func TestMapPoolWithoutPlacer(t *testing.T) {
	g1, pair1 := poolGrant(assetX, proxyA, proxyB)
	h := newHarness(t, func(h *harness) {
		h.policy.grants = []model.Grant{g1}
		h.store.snap = model.Snapshot{Mappings: map[string]model.Mapping{"o": {Org: "o", Pairs: []model.RolePair{pair1}}}}
	})
	res, err := h.svc.Map(context.Background(), MapRequest{Caller: alice, RunID: "r1"})
	if err != nil || !slices.Equal(res.TrustUpdated, []string{proxyA}) || !strings.Contains(res.Config.Text, proxyA) {
		t.Fatalf("%v %v\n%s", err, res.TrustUpdated, res.Config.Text)
	}
}

func TestTrustState(t *testing.T) {
	_, pair1 := poolGrant(assetX, proxyA, proxyC)
	pair1.ProxyPool.Elastic = &model.ElasticPool{TemplateRoleARN: proxyA, Path: "/pools/x/", PermissionsBoundaryARN: "arn:aws:iam::946429944765:policy/b"}
	fp := &fakePools{on: map[string]string{"pool-x/created": "arn:aws:iam::946429944765:role/pools/x/pool-x-001"}}
	h := newHarness(t, func(h *harness) {
		h.policy.allow = true
		h.store.snap = model.Snapshot{Mappings: map[string]model.Mapping{
			"o": {Org: "o", Pairs: []model.RolePair{pair1, {IAMRoleARN: assetY, ProxyIAMRoleARN: proxyB, UpdateTrustPolicy: true}}},
			"p": {Org: "p", Pairs: []model.RolePair{pair1}},
		}}
		h.o.PoolInspector = fp
	})
	st, err := h.svc.Trust(context.Background(), alice, "req")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pools) != 2 || st.Roles == nil || st.Roles.Quota != 1000 {
		t.Fatalf("state: %+v", st)
	}
	pool := st.Pools[0]
	if pool.Name != "pool-x" || !slices.Equal(pool.Orgs, []string{"o", "p"}) || !pool.Elastic || pool.MaxMembers != model.DefaultElasticMaxMembers || len(pool.Members) != 3 {
		t.Fatalf("pool: %+v", pool)
	}
	if m := pool.Members[0]; m.Created || m.FillRatio != 0.5 || m.FreeSlots != 1024/(65+3) || len(m.Subjects) != 1 || !slices.Equal(m.Subjects[0].Runs, []string{"7"}) {
		t.Fatalf("member: %+v", m)
	}
	if m := pool.Members[1]; m.Error == "" {
		t.Fatalf("an unreadable member says why: %+v", m)
	}
	if m := pool.Members[2]; !m.Created {
		t.Fatalf("created member: %+v", m)
	}
	if st.Pools[1].Name != "proxy-b" || len(st.Pools[1].Members) != 1 {
		t.Fatalf("single role: %+v", st.Pools[1])
	}
	h.policy.allow = false
	_, err = h.svc.Trust(context.Background(), alice, "req")
	wantClassified(t, err, model.KindForbidden, "forbidden")
}

// TestMappingWritesRefusePoolConflicts: a put or batch whose pool takes the
// name or elastic path of another org's pool (a copy-paste), or whose proxy
// role lies under another org's elastic path, is refused before IAM is
// asked or anything written; one org's pairs sharing its own pool, and a
// batch that moves a pool from one org to another, are fine.
func TestMappingWritesRefusePoolConflicts(t *testing.T) {
	elastic := model.RolePair{IAMRoleARN: assetX, ProxyIAMRoleARN: proxyA, UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "acme", Members: []string{proxyA}, Elastic: &model.ElasticPool{
			TemplateRoleARN: proxyB, Path: "/irsa-pools/acme/", PermissionsBoundaryARN: "arn:aws:iam::946429944765:policy/b"}}}
	existing := model.Mapping{Org: "a", Pairs: []model.RolePair{elastic}}
	under := model.RolePair{IAMRoleARN: assetY, ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/irsa-pools/acme/acme-001", UpdateTrustPolicy: true}
	shared := elastic
	shared.IAMRoleARN = assetY
	tests := []struct {
		name     string
		put      model.Mapping
		del      []string
		wantCode string
		wantMsg  string
	}{
		{name: "copy of org a's pool", put: model.Mapping{Org: "b", Pairs: []model.RolePair{elastic}}, wantCode: "invalid_mapping", wantMsg: `pool name "acme"`},
		{name: "proxy role under org a's path", put: model.Mapping{Org: "b", Pairs: []model.RolePair{under}}, wantCode: "invalid_mapping", wantMsg: "under the elastic path /irsa-pools/acme/"},
		{name: "org a's pairs sharing its pool", put: model.Mapping{Org: "a", Multi: true, Pairs: []model.RolePair{elastic, shared}}},
		{name: "the pool moves from org a to org b", put: model.Mapping{Org: "b", Pairs: []model.RolePair{elastic}}, del: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, batch := range []bool{false, true} {
				h := newHarness(t, func(h *harness) {
					h.policy.allow = true
					h.o.ProxyRoles = h.proxies
					h.store.snap = model.Snapshot{Mappings: map[string]model.Mapping{"a": existing}}
				})
				var err error
				switch {
				case batch:
					_, err = h.svc.ApplyMappings(context.Background(), alice, model.Batch{Put: []model.Mapping{tt.put}, Delete: tt.del}, "req-1")
				case len(tt.del) > 0:
					continue // a single put cannot move a pool
				default:
					err = h.svc.PutMapping(context.Background(), alice, tt.put, "req-1")
				}
				var kind model.Kind
				if tt.wantCode != "" {
					kind = model.KindInvalid
				}
				wantClassified(t, err, kind, tt.wantCode)
				if _, _, msg := model.Classify(err); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("batch %v: message %q, want %q in it", batch, msg, tt.wantMsg)
				}
				written := len(h.store.puts)+len(h.store.batches) > 0
				if written != (tt.wantCode == "") || (tt.wantCode != "" && len(h.proxies.verified) > 0) {
					t.Errorf("batch %v: written %v, verified %v", batch, written, h.proxies.verified)
				}
			}
		})
	}
}

// blockingInspector holds every Inspect until the test releases it and
// counts the reads in flight.
type blockingInspector struct {
	fakePools
	release chan struct{}

	mu                           sync.Mutex
	started, inflight, maxFlight int
}

func (b *blockingInspector) Inspect(ctx context.Context, role string) (model.RoleTrust, error) {
	b.mu.Lock()
	b.started++
	b.inflight++
	b.maxFlight = max(b.maxFlight, b.inflight)
	b.mu.Unlock()
	<-b.release
	b.mu.Lock()
	b.inflight--
	b.mu.Unlock()
	return model.RoleTrust{Role: role, Quota: 2048}, nil
}

func (b *blockingInspector) counts() (started, maxFlight int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started, b.maxFlight
}

// TestTrustStateBoundsReads: /v2/trust reads at most 8 members at once,
// however large the pool. Reads are released one at a time, each only once
// 8 others are waiting, so any read past the bound is seen in flight.
func TestTrustStateBoundsReads(t *testing.T) {
	const n = 30
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf("arn:aws:iam::946429944765:role/big-%02d", i)
	}
	_, pair := poolGrant(assetX, members...)
	bi := &blockingInspector{release: make(chan struct{})}
	h := newHarness(t, func(h *harness) {
		h.policy.allow = true
		h.store.snap = model.Snapshot{Mappings: map[string]model.Mapping{"o": {Org: "o", Pairs: []model.RolePair{pair}}}}
		h.o.PoolInspector = bi
	})
	done := make(chan error, 1)
	go func() {
		st, err := h.svc.Trust(context.Background(), alice, "req")
		if err == nil && (len(st.Pools) != 1 || len(st.Pools[0].Members) != n) {
			err = fmt.Errorf("state %+v", st)
		}
		done <- err
	}()
	for released := 0; released < n; released++ {
		polltest.Until(t, "reads to wait", func() bool {
			started, _ := bi.counts()
			return started >= min(released+8, n)
		})
		bi.release <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, maxFlight := bi.counts(); maxFlight != 8 {
		t.Fatalf("%d members read at once, want 8", maxFlight)
	}
}
