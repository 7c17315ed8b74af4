package trust_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// keyLocker is a lock per key shared by several writers: what the per-role
// Lease is across replicas.
// placement is a result of Pools.Place.
type placement struct {
	Role  string
	Added bool
}

func place(p *trust.Pools, pair model.RolePair, sub string) (placement, error) {
	role, added, err := p.Place(context.Background(), pair, sub)
	return placement{role, added}, err
}

// placeAll places the subjects of runs run-000 to run-(n-1) at once, one
// goroutine each, and returns each run's placement and error.
func placeAll(p *trust.Pools, pair model.RolePair, n int) ([]placement, []error) {
	var wg sync.WaitGroup
	placed := make([]placement, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			placed[i], errs[i] = place(p, pair, subject(fmt.Sprintf("run-%03d", i)))
		}()
	}
	wg.Wait()
	return placed, errs
}

type keyLocker struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (l *keyLocker) Lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m, ok := l.locks[key]
	if !ok {
		m = &sync.Mutex{}
		l.locks[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock, nil
}

func staticPool(arns ...string) model.RolePair {
	return model.RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-asset", ProxyIAMRoleARN: arns[0], UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "acme", Members: arns}}
}

// holders lists the members of pool whose trust policy holds sub in IAM.
func (e *env) holders(tb testing.TB, members []string, sub string) []string {
	tb.Helper()
	var out []string
	for _, m := range members {
		arn, _ := model.ParseRoleARN(m)
		if slices.Contains(e.subjects(tb, arn.Name), sub) {
			out = append(out, m)
		}
	}
	return out
}

func TestPoolPlacesAcrossMembersUntilFull(t *testing.T) {
	e := newEnv(t) // default quota 2,048: about 25 subjects per member
	members := []string{e.role(t, "acme-proxy-1"), e.role(t, "acme-proxy-2"), e.role(t, "acme-proxy-3")}
	pair := staticPool(members...)
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider, CacheTTL: time.Minute})
	pools := trust.NewPools(trust.PoolOptions{Writer: w})

	const n = 120 // more than three members hold (about 33 each)
	placed, errs := placeAll(pools, pair, n)
	ok, full := 0, 0
	perMember := map[string]int{}
	for i := range n {
		sub := subject(fmt.Sprintf("run-%03d", i))
		var pf *trust.PoolFullError
		switch {
		case errs[i] == nil:
			ok++
			perMember[placed[i].Role]++
			if h := e.holders(t, members, sub); len(h) != 1 || h[0] != placed[i].Role {
				t.Fatalf("%s placed on %s, but IAM has it on %v", sub, placed[i].Role, h)
			}
		case errors.As(errs[i], &pf):
			full++
			if k, code, msg := model.Classify(errs[i]); k != model.KindConflict || code != "proxy_pool_full" || !strings.Contains(msg, "acme") {
				t.Fatalf("full pool: (%v, %s, %s)", k, code, msg)
			}
			if h := e.holders(t, members, sub); len(h) != 0 {
				t.Fatalf("%s refused but held by %v", sub, h)
			}
		default:
			t.Fatalf("place %s: %v", sub, errs[i])
		}
	}
	if len(perMember) != 3 || full == 0 || ok+full != n {
		t.Fatalf("placed %d (per member %v), full %d: want every member used and the rest refused", ok, perMember, full)
	}
	total := 0
	for _, m := range members {
		arn, _ := model.ParseRoleARN(m)
		total += len(e.subjects(t, arn.Name))
	}
	if total != ok {
		t.Fatalf("IAM holds %d subjects, %d were placed", total, ok)
	}
	t.Logf("%d placed over %v, %d refused", ok, perMember, full)

	// A placed subject stays where it is, even with room elsewhere, and a
	// second writer (a restarted or another replica) finds it there too.
	first := placed[slices.IndexFunc(errs, func(err error) bool { return err == nil })]
	sub := ""
	for i := range n {
		if errs[i] == nil && placed[i].Role == members[2] {
			sub = subject(fmt.Sprintf("run-%03d", i))
			break
		}
	}
	arn0, _ := model.ParseRoleARN(members[0])
	if err := w.Remove(context.Background(), members[0], e.subjects(t, arn0.Name)[:3]...); err != nil {
		t.Fatal(err)
	}
	other := trust.NewPools(trust.PoolOptions{Writer: trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider})})
	for _, p := range []*trust.Pools{pools, other} {
		got, err := place(p, pair, sub)
		if err != nil || got.Role != members[2] || got.Added {
			t.Fatalf("re-place of %s = %+v, %v; want it to stay on %s", sub, got, err, members[2])
		}
	}
	if h := e.holders(t, members, sub); len(h) != 1 {
		t.Fatalf("%s is now on %v", sub, h)
	}
	_ = first
}

// TestPoolReplicasAgree: three writers over the same roles, serialized per
// role by one shared lock (the Lease), place the same subjects at the same
// time, as replicas serving the pods of one run do: nothing is lost, and
// every placement names a member that holds its subject.
func TestPoolReplicasAgree(t *testing.T) {
	e := newEnv(t)
	e.sim.SetLatency("", 5*time.Millisecond)
	members := []string{e.role(t, "acme-proxy-1"), e.role(t, "acme-proxy-2"), e.role(t, "acme-proxy-3")}
	pair := staticPool(members...)
	locker := &keyLocker{}
	var replicas []*trust.Pools
	for range 3 {
		w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider, Locker: locker, CacheTTL: 30 * time.Second})
		replicas = append(replicas, trust.NewPools(trust.PoolOptions{Writer: w, Locker: locker}))
	}
	const runs = 60
	type result struct {
		sub string
		pl  placement
		err error
	}
	results := make(chan result, runs*3)
	var wg sync.WaitGroup
	for i := range runs {
		for r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub := subject(fmt.Sprintf("run-%03d", i))
				pl, err := place(replicas[(i+r)%3], pair, sub)
				results <- result{sub, pl, err}
			}()
		}
	}
	wg.Wait()
	close(results)
	dups := 0
	seen := map[string]bool{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", r.sub, r.err)
		}
		h := e.holders(t, members, r.sub)
		if !slices.Contains(h, r.pl.Role) {
			t.Fatalf("%s placed on %s but IAM has it on %v", r.sub, r.pl.Role, h)
		}
		if len(h) > 1 && !seen[r.sub] {
			dups++
		}
		seen[r.sub] = true
	}
	if len(seen) != runs {
		t.Fatalf("%d subjects answered, want %d", len(seen), runs)
	}
	// Without removals a member's fill only grows, so replicas trying the
	// members in the same order cannot disagree: no subject is placed twice
	// (docs/design/pools.md, "Several replicas").
	if dups != 0 {
		t.Fatalf("%d of %d subjects are held by two members", dups, runs)
	}
}

// elasticEnv sets up the template of an elastic pool: a proxy role with an
// inline and an attached policy, and the permissions boundary.
func elasticEnv(t *testing.T, e *env) model.RolePair {
	t.Helper()
	tmpl := e.role(t, "acme-proxy-template")
	static := e.role(t, "acme-proxy-1")
	if err := e.sim.PutRolePolicy(acct, "acme-proxy-template", "assume-asset",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::524112250363:role/acme-asset"}]}`); err != nil {
		t.Fatal(err)
	}
	managed, err := e.sim.CreatePolicy(acct, "irsa-proxy-extra", "/", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:TagSession","Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AttachRolePolicy(acct, "acme-proxy-template", managed); err != nil {
		t.Fatal(err)
	}
	boundary, err := e.sim.CreatePolicy(acct, "irsa-pool-boundary", "/", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	pair := staticPool(static)
	pair.ProxyPool.Elastic = &model.ElasticPool{TemplateRoleARN: tmpl, Path: "/irsa-pools/acme/", PermissionsBoundaryARN: boundary, MaxMembers: 3, EmptyGraceSeconds: 60}
	if err := pair.Validate(); err != nil {
		t.Fatal(err)
	}
	return pair
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestElasticPoolGrowsAndShrinks(t *testing.T) {
	e := newEnv(t)
	pair := elasticEnv(t, e)
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	client := e.client(t)
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: provider, CacheTTL: 30 * time.Second, Now: clock.Now})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client, Now: clock.Now, ManagedBy: "broker-test"})

	const n = 110 // the static member (about 33) and three created ones
	placed, errs := placeAll(pools, pair, n)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run-%03d: %v", i, err)
		}
	}
	members, err := pools.Members(context.Background(), pair)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 4 {
		t.Fatalf("members = %v: want the static one and 3 created", members)
	}
	for i := range n {
		if h := e.holders(t, members, subject(fmt.Sprintf("run-%03d", i))); len(h) != 1 || h[0] != placed[i].Role {
			t.Fatalf("run-%03d placed on %s, IAM has it on %v", i, placed[i].Role, h)
		}
	}
	snap := e.sim.Snapshot()
	created := 0
	for _, r := range snap.Accounts[0].Roles {
		if r.Path != "/irsa-pools/acme/" {
			continue
		}
		created++
		if r.PermissionsBoundary != pair.ProxyPool.Elastic.PermissionsBoundaryARN || r.Tags[trust.TagPool] != "acme" ||
			r.Tags[trust.TagManagedBy] != "broker-test" || r.Tags[trust.TagTemplate] != "acme-proxy-template" {
			t.Fatalf("member %s: boundary %q tags %v", r.Name, r.PermissionsBoundary, r.Tags)
		}
		if _, ok := r.InlinePolicies["assume-asset"]; !ok || len(r.AttachedPolicies) != 1 {
			t.Fatalf("member %s did not get the template's policies: %v %v", r.Name, r.InlinePolicies, r.AttachedPolicies)
		}
		if strings.Contains(r.TrustPolicy, "ec2.amazonaws.com") {
			t.Fatalf("member %s copied an unmanaged statement: %s", r.Name, r.TrustPolicy)
		}
	}
	if created != len(members)-1 {
		t.Fatalf("%d roles under the path, %d created members", created, len(members)-1)
	}

	// Full at max_members: a clear 409 naming the pool.
	for i := 0; err == nil; i++ {
		if i > 100 {
			t.Fatal("the pool never filled")
		}
		_, _, err = pools.Place(context.Background(), pair, subject(fmt.Sprintf("overflow-%03d", i)))
	}
	if k, code, msg := model.Classify(err); k != model.KindConflict || code != "proxy_pool_full" || !strings.Contains(msg, "proxy pool acme") {
		t.Fatalf("overflow: %v (%v %s %s)", err, k, code, msg)
	}
	if got, _ := pools.Members(context.Background(), pair); len(got) != 4 {
		t.Fatalf("grew past max_members: %v", got)
	}

	// Every run ends: clean-up empties the members; they are deleted once
	// they stayed empty for the grace period, and not before.
	for _, m := range members {
		arn, _ := model.ParseRoleARN(m)
		if subs := e.subjects(t, arn.Name); len(subs) > 0 {
			if err := w.Remove(context.Background(), m, subs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := pools.Shrink(context.Background(), []model.RolePair{pair}); err != nil || n != 0 {
		t.Fatalf("first shrink deleted %d (%v): the grace period has not passed", n, err)
	}
	clock.Add(61 * time.Second)
	if n, err := pools.Shrink(context.Background(), []model.RolePair{pair}); err != nil || n != created {
		t.Fatalf("shrink after the grace period deleted %d of %d: %v", n, created, err)
	}
	for _, r := range e.sim.Snapshot().Accounts[0].Roles {
		if r.Path == "/irsa-pools/acme/" {
			t.Fatalf("member %s survived", r.Name)
		}
	}
	if got, err := pools.Members(context.Background(), pair); err != nil || len(got) != 1 {
		t.Fatalf("members after shrink = %v, %v", got, err)
	}
}

func TestElasticMemberNotDeletedWhileHoldingASubject(t *testing.T) {
	e := newEnv(t)
	pair := elasticEnv(t, e)
	pair.ProxyPool.Elastic.EmptyGraceSeconds = 1
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	client := e.client(t)
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: provider, Now: clock.Now})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client, Now: clock.Now, Fresh: time.Second})
	// Fill the static member so that the next subject needs a created one.
	for i := 0; ; i++ {
		pl, err := place(pools, pair, subject(fmt.Sprintf("run-%03d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if pl.Role != pair.ProxyIAMRoleARN {
			break
		}
	}
	members, _ := pools.Members(context.Background(), pair)
	created := members[1]
	arn, _ := model.ParseRoleARN(created)
	subs := e.subjects(t, arn.Name)
	if err := w.Remove(context.Background(), created, subs...); err != nil {
		t.Fatal(err)
	}
	if n, _ := pools.Shrink(context.Background(), []model.RolePair{pair}); n != 0 {
		t.Fatal("deleted at first sight")
	}
	clock.Add(2 * time.Second)
	// A subject arrives before the deletion round: the member stays.
	if err := w.Ensure(context.Background(), created, subject("late")); err != nil {
		t.Fatal(err)
	}
	if n, err := pools.Shrink(context.Background(), []model.RolePair{pair}); n != 0 || err != nil {
		t.Fatalf("deleted %d members holding a subject (%v)", n, err)
	}
	if got := e.subjects(t, arn.Name); !slices.Equal(got, []string{subject("late")}) {
		t.Fatalf("member holds %v", got)
	}
}

func TestElasticPoolRolesQuota(t *testing.T) {
	e := newEnv(t)
	pair := elasticEnv(t, e)
	e.sim.SetRolesQuota(acct, len(e.sim.Snapshot().Accounts[0].Roles))
	client := e.client(t)
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: provider})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client})
	var err error
	for i := 0; err == nil; i++ {
		_, _, err = pools.Place(context.Background(), pair, subject(fmt.Sprintf("run-%03d", i)))
		if i > 100 {
			t.Fatal("the pool never filled")
		}
	}
	var q *trust.RolesQuotaError
	if k, code, msg := model.Classify(err); !errors.As(err, &q) || k != model.KindConflict || code != "proxy_pool_roles_quota" || !strings.Contains(msg, "proxy pool acme") {
		t.Fatalf("at the roles quota: %v (%v %s %s)", err, k, code, msg)
	}
}

func TestFillAlertOncePerCrossing(t *testing.T) {
	e := newEnv(t)
	arn := e.role(t, "acme-proxy")
	var mu sync.Mutex
	var alerts []string
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider, Alert: func(kind, name string, ratio float64) {
		mu.Lock()
		defer mu.Unlock()
		alerts = append(alerts, fmt.Sprintf("%s %s %.2f", kind, name, ratio))
	}})
	var added []string
	for i := 0; ; i++ {
		s := subject(fmt.Sprintf("run-%03d", i))
		if err := w.Ensure(context.Background(), arn, s); err != nil {
			break
		}
		added = append(added, s)
	}
	mu.Lock()
	if len(alerts) != 1 || !strings.HasPrefix(alerts[0], "role "+arn+" 0.8") {
		t.Fatalf("alerts = %v, want one as the role passed 80%%", alerts)
	}
	mu.Unlock()
	if err := w.Remove(context.Background(), arn, added...); err != nil {
		t.Fatal(err)
	}
	if err := w.Ensure(context.Background(), arn, added...); err == nil {
		mu.Lock()
		defer mu.Unlock()
		if len(alerts) != 2 {
			t.Fatalf("alerts = %v, want a second one after dropping below and passing again", alerts)
		}
	}
}

// TestWithoutPrune: an Ensure marked WithoutPrune on a full role gets a
// SizeError and its round asks Prune nothing; unmarked, the round prunes.
func TestWithoutPrune(t *testing.T) {
	e := newEnv(t)
	arn := e.role(t, "acme-proxy")
	var asked sync.Map
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider, Prune: func(_ context.Context, role string, subjects []string) ([]string, error) {
		asked.Store(role, true)
		return subjects[:1], nil
	}})
	for i := 0; ; i++ {
		if err := w.Ensure(trust.WithoutPrune(context.Background()), arn, subject(fmt.Sprintf("run-%03d", i))); err != nil {
			var se *trust.SizeError
			if !errors.As(err, &se) {
				t.Fatal(err)
			}
			break
		}
	}
	if _, ok := asked.Load(arn); ok {
		t.Fatal("a round of WithoutPrune requests pruned")
	}
	if err := w.Ensure(context.Background(), arn, subject("late")); err != nil {
		t.Fatalf("with pruning: %v", err)
	}
	if _, ok := asked.Load(arn); !ok {
		t.Fatal("a full round did not prune")
	}
}

// TestElasticPoolDoesNotGrowForASubjectNoMemberTakes: a subject that does
// not fit even an empty member (the template's trust policy and the subject
// exceed the quota) is refused with a clear 409 before any member is
// created.
func TestElasticPoolDoesNotGrowForASubjectNoMemberTakes(t *testing.T) {
	e := newEnv(t)
	pair := elasticEnv(t, e)
	// Room for the static member's and the template's policies as they
	// are, not for a subject more.
	e.sim.SetQuota(acct, len(proxyTrust())+10)
	before := len(e.sim.Snapshot().Accounts[0].Roles)
	client := e.client(t)
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: provider})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client})

	// The template's managed statement alone is shorter than the static
	// member's policy; this subject does not fit it either.
	_, _, err := pools.Place(context.Background(), pair, subject("run-"+strings.Repeat("long", 30)))
	var tl *trust.SubjectTooLargeError
	if k, code, msg := model.Classify(err); !errors.As(err, &tl) || k != model.KindConflict || code != "proxy_pool_subject_too_large" || !strings.Contains(msg, "proxy pool acme") {
		t.Fatalf("Place = %v (%v %s %s): want proxy_pool_subject_too_large", err, k, code, msg)
	}
	if after := len(e.sim.Snapshot().Accounts[0].Roles); after != before {
		t.Fatalf("the pool created %d members for a subject none can hold", after-before)
	}
}

// TestElasticPoolOnlyUsesAndDeletesItsOwnMembers: a role under the pool's
// path named like a member but without the broker's tags (another team's,
// or a copy-pasted pool's) is never given a subject nor deleted; a member
// whose tags are gone by the time it would be deleted is kept too.
func TestElasticPoolOnlyUsesAndDeletesItsOwnMembers(t *testing.T) {
	e := newEnv(t)
	pair := elasticEnv(t, e)
	pair.ProxyPool.Elastic.EmptyGraceSeconds = 1
	foreign, err := e.sim.CreateRole(acct, "acme-001", "/irsa-pools/acme/", proxyTrust())
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	client := e.client(t)
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: provider, Now: clock.Now})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client, Now: clock.Now, Fresh: time.Second})
	// Fill the static member so that the next subject needs a created one.
	var pl placement
	for i := 0; pl.Role == "" || pl.Role == pair.ProxyIAMRoleARN; i++ {
		if pl, err = place(pools, pair, subject(fmt.Sprintf("run-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if pl.Role == foreign {
		t.Fatalf("a subject was placed in %s, a role the broker did not create", foreign)
	}
	if subs := e.subjects(t, "acme-001"); len(subs) != 0 {
		t.Fatalf("the foreign role was given %v", subs)
	}
	members, err := pools.Members(context.Background(), pair)
	if err != nil || slices.Contains(members, foreign) || len(members) != 2 {
		t.Fatalf("members = %v, %v: want the static one and one created", members, err)
	}
	created := members[1]
	arn, _ := model.ParseRoleARN(created)
	if err := w.Remove(context.Background(), created, e.subjects(t, arn.Name)...); err != nil {
		t.Fatal(err)
	}
	// Both the foreign role and the emptied member are empty now; once the
	// grace period passed, only the member is deleted.
	if n, err := pools.Shrink(context.Background(), []model.RolePair{pair}); n != 0 || err != nil {
		t.Fatalf("first shrink deleted %d (%v)", n, err)
	}
	clock.Add(2 * time.Second)
	// The member loses its tags before it is deleted: it is kept.
	if err := e.sim.UntagRole(acct, arn.Name, trust.TagManagedBy); err != nil {
		t.Fatal(err)
	}
	n, err := pools.Shrink(context.Background(), []model.RolePair{pair})
	var no *trust.NotOwnedError
	if n != 0 || !errors.As(err, &no) {
		t.Fatalf("shrink of an untagged member deleted %d (%v): want none and a NotOwnedError", n, err)
	}
	for _, name := range []string{"acme-001", arn.Name} {
		if _, err := e.sim.RoleARN(acct, name); err != nil {
			t.Fatalf("%s was deleted: %v", name, err)
		}
	}
}

// TestElasticGrowthCountsSubjectsNotRuns: many runs of one user share one
// per-user subject; waiting on growth together, they need one slot, so the
// pool creates one member, not one per run.
func TestElasticGrowthCountsSubjectsNotRuns(t *testing.T) {
	e := newEnv(t)
	pair := elasticEnv(t, e)
	pair.ProxyPool.Elastic.MaxMembers = 10
	// Room for one subject per member: a growth sized by runs would create
	// a member per waiting run.
	e.sim.SetQuota(acct, len(proxyTrust())+len(subject("user-dora"))+8)
	client := e.client(t)
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: provider})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client})
	// Fill the static member.
	if _, err := place(pools, pair, subject("user-carl")); err != nil {
		t.Fatal(err)
	}
	// Slow the template's read so that every run joins the growth.
	e.sim.SetLatency("GetRole", 50*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := place(pools, pair, subject("user-dora"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	members, err := pools.Members(context.Background(), pair)
	if err != nil || len(members) != 2 {
		t.Fatalf("members = %v, %v: want the static one and one created for the one subject", members, err)
	}
}
