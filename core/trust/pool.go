package trust

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// PoolIAM is what elastic pools need of IAM beyond the writer's calls;
// *iam.Client implements it.
type PoolIAM interface {
	ListRoles(ctx context.Context, pathPrefix string) ([]iam.Role, error)
	CreateRole(ctx context.Context, r iam.NewRole) (iam.Role, error)
	CopyRolePolicies(ctx context.Context, from, to string) error
	DeleteRole(ctx context.Context, name string) error
	RolesUsage(ctx context.Context) (used, quota int, err error)
}

var _ PoolIAM = (*iam.Client)(nil)

// Ensurer adds subjects to one role: the Writer, or a decorator of it that
// audits each change.
type Ensurer interface {
	EnsureAdded(ctx context.Context, roleARN string, subjects ...string) (bool, error)
}

// Tags set on every member an elastic pool creates.
const (
	TagPool      = "irsa-broker.io/pool"
	TagManagedBy = "irsa-broker.io/managed-by"
	TagTemplate  = "irsa-broker.io/template"
)

// PoolOptions configures NewPools.
type PoolOptions struct {
	Writer *Writer
	// Ensure adds subjects (default: Writer).
	Ensure Ensurer
	// IAM, optional, lets elastic pools grow and shrink; without it an
	// elastic pool is static.
	IAM PoolIAM
	// Locker serializes the growth of one pool across replicas (the lock is
	// keyed "pool/<name>"); nil: within this process only.
	Locker Locker
	// Fresh is how old a role's last-round document may be for placement to
	// trust it (membership, room). Default: the writer's CacheTTL, or 10 s
	// when that is off.
	Fresh time.Duration
	// ListTTL is how long the members listed under an elastic pool's path
	// are reused (default 10 s; growth and deletion refresh it).
	ListTTL time.Duration
	// ManagedBy is the value of the irsa-broker.io/managed-by tag (default
	// "irsa-broker").
	ManagedBy string
	// Alert, optional, is told when a pool's fill passes AlertRatio.
	Alert FillAlert
	Now   func() time.Time
	// Registerer, optional, receives the pool metrics.
	Registerer prometheus.Registerer
	Logger     hclog.Logger
}

// Pools places subjects on the members of proxy-role pools
// (docs/design/pools.md): a subject a member already holds stays there; a
// new one goes to the first member with room; an elastic pool whose members
// are all full grows. What is placed where is recorded only in the members'
// trust policies.
type Pools struct {
	o     PoolOptions
	w     *Writer
	log   hclog.Logger
	m     *poolMetrics
	alarm *alarm
	grow  singleflight.Group
	list  singleflight.Group

	mu         sync.Mutex
	lists      map[string]listing        // pool key → elastic members
	waiting    map[string]map[string]int // pool key → subject → placements waiting for growth
	emptySince map[string]time.Time      // elastic member → first seen empty
	templates  map[string]templateCache  // template role → managed-only policy
	// owned remembers, per role ARN and RoleId, whether the role carries the
	// tags this broker gives the members it creates for the pool (checked
	// with GetRole once per role incarnation).
	owned map[ownedKey]bool
}

type ownedKey struct{ pool, arn, id string }

type listing struct {
	members []string // elastic members this broker created, by number
	taken   []int    // every number in use under the path, foreign roles too
	at      time.Time
}

type templateCache struct {
	doc string
	at  time.Time
}

// Placement is where a subject was placed.
type placement struct {
	Role  string // the member that holds the subject
	Added bool   // this call wrote it there
}

// PoolFullError: every member of a pool is full and the pool cannot grow.
type PoolFullError struct {
	Pool    string
	Members int
	Elastic bool
	Max     int // created members allowed (elastic)
}

func (e *PoolFullError) Error() string {
	if e.Elastic {
		return fmt.Sprintf("proxy pool %s is full: all %d members are at the trust-policy size quota and it already has the %d created members it may have (raise elastic.max_members)", e.Pool, e.Members, e.Max)
	}
	return fmt.Sprintf("proxy pool %s is full: all %d members are at the trust-policy size quota (add members, or make the pool elastic)", e.Pool, e.Members)
}

// Classify implements model.Classified.
func (e *PoolFullError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "proxy_pool_full", e.Error()
}

// SubjectTooLargeError: the subject does not fit even an empty member of
// an elastic pool (the template's trust policy and the subject exceed the
// account's trust-policy size quota), so growing the pool cannot help.
type SubjectTooLargeError struct {
	Pool        string
	Size, Quota int // an empty member's trust policy with the subject; the quota
}

func (e *SubjectTooLargeError) Error() string {
	return fmt.Sprintf("proxy pool %s cannot take this subject: even an empty member's trust policy would be %d characters with it, over the quota of %d (shorten the template's trust policy or raise AssumeRolePolicySizeQuota)", e.Pool, e.Size, e.Quota)
}

// Classify implements model.Classified.
func (e *SubjectTooLargeError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "proxy_pool_subject_too_large", e.Error()
}

// RolesQuotaError: an elastic pool needs a new member but the account is at
// its roles quota.
type RolesQuotaError struct {
	Pool        string
	Used, Quota int // 0 when unknown (IAM answered LimitExceeded)
	Err         error
}

func (e *RolesQuotaError) Error() string {
	if e.Quota > 0 {
		return fmt.Sprintf("proxy pool %s cannot grow: the account holds %d roles and its roles quota is %d", e.Pool, e.Used, e.Quota)
	}
	return fmt.Sprintf("proxy pool %s cannot grow: the account is at its roles quota", e.Pool)
}

func (e *RolesQuotaError) Unwrap() error { return e.Err }

// Classify implements model.Classified.
func (e *RolesQuotaError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "proxy_pool_roles_quota", e.Error()
}

// NewPools returns the placement of subjects on pools of w's roles.
func NewPools(o PoolOptions) *Pools {
	if o.Ensure == nil {
		o.Ensure = o.Writer
	}
	if o.Fresh <= 0 {
		o.Fresh = o.Writer.opts.CacheTTL
		if o.Fresh <= 0 {
			o.Fresh = 10 * time.Second
		}
	}
	if o.ListTTL <= 0 {
		o.ListTTL = 10 * time.Second
	}
	if o.ManagedBy == "" {
		o.ManagedBy = "irsa-broker"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	log := o.Logger.Named("pools")
	return &Pools{
		o: o, w: o.Writer, log: log, m: newPoolMetrics(o.Registerer, log), alarm: newAlarm("pool", o.Alert),
		lists: map[string]listing{}, waiting: map[string]map[string]int{},
		emptySince: map[string]time.Time{}, templates: map[string]templateCache{},
		owned: map[ownedKey]bool{},
	}
}

// Place makes subject trusted by one member of pair's proxy pool and says
// which (role), and whether this call wrote it there (added). A pair
// without a pool is a pool of one: the subject goes to its proxy role,
// exactly as before pools.
func (p *Pools) Place(ctx context.Context, pair model.RolePair, subject string) (role string, added bool, err error) {
	if !pair.IsPool() {
		added, err := p.o.Ensure.EnsureAdded(ctx, pair.ProxyIAMRoleARN, subject)
		if err != nil {
			return "", false, err
		}
		return pair.ProxyIAMRoleARN, added, nil
	}
	name := pair.PoolName()
	pl, result, err := p.place(ctx, pair, subject)
	p.m.placements.WithLabelValues(name, result).Inc()
	p.observe(pair, len(subject))
	return pl.Role, pl.Added, err
}

// Inspect reads one member's trust policy: from the document of the
// writer's last round of it when that is younger than Fresh (no IAM call),
// otherwise now (the writer's Inspect, one GetRole).
func (p *Pools) Inspect(ctx context.Context, role string) (model.RoleTrust, error) {
	if rt, ok := p.w.knownTrust(role, p.o.Fresh); ok {
		return rt, nil
	}
	return p.w.Inspect(ctx, role)
}

// RolesUsage is the account's role count and roles quota; zeros without IAM.
func (p *Pools) RolesUsage(ctx context.Context) (used, quota int, err error) {
	if p.o.IAM == nil {
		return 0, 0, nil
	}
	return p.o.IAM.RolesUsage(ctx)
}

func (p *Pools) place(ctx context.Context, pair model.RolePair, subject string) (placement, string, error) {
	members, err := p.Members(ctx, pair)
	if err != nil {
		return placement{}, "error", err
	}
	// 1. A member that holds the subject keeps it (one pass over all members).
	held, errs := p.w.Lookup(ctx, members, subject, p.o.Fresh)
	for i, h := range held {
		if errs[i] != nil && !iam.IsKind(errs[i], iam.KindNoSuchEntity) {
			p.log.Warn("cannot tell whether a pool member holds the subject; placing anyway", "pool", pair.PoolName(), "role", members[i], "error", errs[i])
		}
		if !h {
			continue
		}
		added, err := p.o.Ensure.EnsureAdded(ctx, members[i], subject)
		if err != nil {
			return placement{}, "error", err
		}
		return placement{Role: members[i], Added: added}, "existing", nil
	}
	// 2. A new subject goes to the first member with room, without pruning
	// (another member may have room); 3. an elastic pool grows; 4. only
	// when every member refused it, each is tried again with pruning.
	tried := map[string]bool{}
	canGrow := p.elastic(pair)
	noPrune := WithoutPrune(ctx)
	for attempt := 0; attempt < 2*(model.MaxPoolMembers+model.MaxElasticMembers); attempt++ {
		role := p.pick(members, subject, tried, noPrune == nil)
		if role == "" && canGrow {
			grown, err := p.growPool(ctx, pair, subject)
			var full *PoolFullError
			switch {
			case errors.As(err, &full):
				canGrow = false
			case err != nil:
				return placement{}, resultOf(err), err
			default:
				members = grown
				continue
			}
		}
		if role == "" && noPrune != nil {
			// Every member refused the subject without pruning: try them
			// all again, letting full ones prune ended runs.
			noPrune, tried = nil, map[string]bool{}
			continue
		}
		if role == "" {
			return placement{}, "full", p.fullError(pair, len(members))
		}
		ectx := ctx
		if noPrune != nil {
			ectx = noPrune
		}
		added, err := p.o.Ensure.EnsureAdded(ectx, role, subject)
		var size *SizeError
		switch {
		case errors.As(err, &size):
			if f, ok := p.w.Fill(role); ok && f.Subjects == 0 && !slices.Contains(pair.ProxyMembers(), role) {
				// An empty created member refused it: so would every member
				// the pool could create. Do not grow for it.
				return placement{}, "too_large", &SubjectTooLargeError{Pool: pair.PoolName(), Size: size.Size, Quota: size.Quota}
			}
			tried[role] = true
			continue
		case iam.IsKind(err, iam.KindNoSuchEntity) && !slices.Contains(pair.ProxyMembers(), role):
			// An elastic member deleted meanwhile (it was empty).
			tried[role] = true
			p.forget(pair)
			continue
		case err != nil:
			return placement{}, "error", err
		}
		return placement{Role: role, Added: added}, "placed", nil
	}
	return placement{}, "full", p.fullError(pair, len(members))
}

func resultOf(err error) string {
	var (
		q *RolesQuotaError
		t *SubjectTooLargeError
	)
	switch {
	case errors.As(err, &q):
		return "roles_quota"
	case errors.As(err, &t):
		return "too_large"
	}
	return "error"
}

func (p *Pools) fullError(pair model.RolePair, members int) error {
	pp := pair.ProxyPool
	return &PoolFullError{Pool: pair.PoolName(), Members: members, Elastic: pp.Elastic != nil, Max: pp.MaxMembers()}
}

func (p *Pools) elastic(pair model.RolePair) bool {
	return pair.ProxyPool != nil && pair.ProxyPool.Elastic != nil && p.o.IAM != nil
}

// pick chooses the member to try next: the first member not tried yet
// whose last document is unknown, older than Fresh, or fresh with room
// for the subject. With exhaustive, a member known to be full is tried too
// (its document may predate a removal). The order is the members' order for
// every replica and every subject (first fit): replicas placing one subject
// at the same time try the same member first, and the lock of that member
// lets one add it and the other find it there. (Spreading concurrent
// subjects over members by in-flight counts was faster, but replicas with
// different counts placed one subject twice; and first fit lets the last
// members of an elastic pool drain so they can be deleted.)
func (p *Pools) pick(members []string, subject string, tried map[string]bool, exhaustive bool) string {
	now := p.o.Now()
	// A member whose fresh document holds the subject wins: another replica
	// may have placed it since the lookup pass, on a member this process
	// has since read (and may now find full).
	for _, m := range members {
		if held, ok := p.w.knownHas(m, subject, p.o.Fresh); ok && held {
			return m
		}
	}
	subjectLen := len(subject)
	full := ""
	for _, m := range members {
		if tried[m] {
			continue
		}
		f, ok := p.w.Fill(m)
		if !ok || now.Sub(f.At) >= p.o.Fresh || f.Free(subjectLen) > 0 {
			return m
		}
		if full == "" {
			full = m
		}
	}
	if exhaustive {
		return full
	}
	return ""
}

// Members lists the pool's members: the static ones, then those an elastic
// pool created (listed under its path, by number).
func (p *Pools) Members(ctx context.Context, pair model.RolePair) ([]string, error) {
	static := pair.ProxyMembers()
	if !p.elastic(pair) {
		return static, nil
	}
	created, err := p.created(ctx, pair, false)
	if err != nil {
		return nil, err
	}
	return append(slices.Clone(static), created...), nil
}

// created lists the members an elastic pool created, from the cache unless
// refresh or it is older than ListTTL.
func (p *Pools) created(ctx context.Context, pair model.RolePair, refresh bool) ([]string, error) {
	l, err := p.listed(ctx, pair, refresh)
	return l.members, err
}

// listed is created with the member numbers taken under the path.
func (p *Pools) listed(ctx context.Context, pair model.RolePair, refresh bool) (listing, error) {
	key := pair.PoolKey()
	p.mu.Lock()
	l, ok := p.lists[key]
	p.mu.Unlock()
	if ok && !refresh && p.o.Now().Sub(l.at) < p.o.ListTTL {
		return l, nil
	}
	if !refresh {
		v, err, _ := p.list.Do(key, func() (any, error) { return p.listed(ctx, pair, true) })
		if err != nil {
			return listing{}, err
		}
		return v.(listing), nil
	}
	at := p.o.Now()
	roles, err := p.o.IAM.ListRoles(ctx, pair.ProxyPool.Elastic.Path)
	if err != nil {
		return listing{}, fmt.Errorf("trust: listing the members of proxy pool %s: %w", pair.PoolName(), err)
	}
	type numbered struct {
		n int
		r iam.Role
	}
	var found []numbered
	for _, r := range roles {
		if n, ok := model.ParseElasticMemberName(pair.PoolName(), r.Name); ok && r.Path == pair.ProxyPool.Elastic.Path {
			found = append(found, numbered{n, r})
		}
	}
	slices.SortFunc(found, func(a, b numbered) int { return a.n - b.n })
	// Only roles carrying this broker's tags for this pool are members: a
	// role someone else put under the path with a member's name is neither
	// given subjects nor deleted.
	owned := make([]bool, len(found))
	errs := make([]error, len(found))
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8)
	for i, f := range found {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			owned[i], errs[i] = p.isOwned(ctx, pair, f.r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return listing{}, fmt.Errorf("trust: checking the members of proxy pool %s: %w", pair.PoolName(), err)
	}
	l = listing{at: at}
	for i, f := range found {
		l.taken = append(l.taken, f.n)
		if owned[i] {
			l.members = append(l.members, f.r.ARN)
		}
	}
	p.mu.Lock()
	p.lists[key] = l
	p.mu.Unlock()
	return l, nil
}

// NotOwnedError: a role under an elastic pool's path, named like one of its
// members, lacks the tags the broker gives the members it creates for that
// pool; the broker neither places subjects in it nor deletes it.
type NotOwnedError struct {
	Pool, Role string
	Tags       map[string]string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("role %s is under the path of proxy pool %s but was not created by this broker for it (tags %s=%q, %s=%q, %s=%q)",
		e.Role, e.Pool, TagManagedBy, e.Tags[TagManagedBy], TagPool, e.Tags[TagPool], TagTemplate, e.Tags[TagTemplate])
}

// Classify implements model.Classified.
func (e *NotOwnedError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "proxy_pool_member_not_owned", e.Error()
}

// ownedTags reports whether tags are those createMember gives a member of pair's pool.
func (p *Pools) ownedTags(pair model.RolePair, tags map[string]string) bool {
	tmpl, _ := model.ParseRoleARN(pair.ProxyPool.Elastic.TemplateRoleARN)
	return tags[TagManagedBy] == p.o.ManagedBy && tags[TagPool] == pair.PoolName() && tags[TagTemplate] == tmpl.Name
}

// checkOwned reads the role now (GetRole) and fails with a *NotOwnedError
// unless it carries the pool's tags.
func (p *Pools) checkOwned(ctx context.Context, pair model.RolePair, role string) (iam.Role, error) {
	arn, err := model.ParseRoleARN(role)
	if err != nil {
		return iam.Role{}, fmt.Errorf("trust: %w", err)
	}
	r, err := p.w.api.GetRole(ctx, arn.Name)
	if err != nil {
		return iam.Role{}, err
	}
	if r.ARN != role || !p.ownedTags(pair, r.Tags) {
		return r, &NotOwnedError{Pool: pair.PoolName(), Role: role, Tags: r.Tags}
	}
	return r, nil
}

// isOwned is checkOwned remembered per role incarnation (ARN and RoleId). A
// role gone meanwhile is not a member.
func (p *Pools) isOwned(ctx context.Context, pair model.RolePair, listed iam.Role) (bool, error) {
	k := ownedKey{pair.PoolKey(), listed.ARN, listed.ID}
	p.mu.Lock()
	v, ok := p.owned[k]
	p.mu.Unlock()
	if ok {
		return v, nil
	}
	r, err := p.checkOwned(ctx, pair, listed.ARN)
	var no *NotOwnedError
	switch {
	case iam.IsKind(err, iam.KindNoSuchEntity):
		return false, nil
	case errors.As(err, &no):
		p.log.Warn("a role under an elastic pool's path lacks the broker's tags: not a member, never given subjects nor deleted", "pool", pair.PoolName(), "role", listed.ARN, "error", err)
	case err != nil:
		return false, err
	}
	if listed.ID != "" && r.ID != listed.ID {
		return false, nil // replaced since the listing: judged at the next one
	}
	p.mu.Lock()
	p.owned[k] = no == nil
	p.mu.Unlock()
	return no == nil, nil
}

func (p *Pools) forget(pair model.RolePair) {
	p.mu.Lock()
	delete(p.lists, pair.PoolKey())
	p.mu.Unlock()
}

// growPool makes room in an elastic pool whose members are all full: once
// per pool at a time in this process (the others wait for it), under the
// pool's lock across replicas. It returns the members after growing.
func (p *Pools) growPool(ctx context.Context, pair model.RolePair, subject string) ([]string, error) {
	key := pair.PoolKey()
	p.mu.Lock()
	if p.waiting[key] == nil {
		p.waiting[key] = map[string]int{}
	}
	p.waiting[key][subject]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.waiting[key][subject]--; p.waiting[key][subject] <= 0 {
			delete(p.waiting[key], subject)
		}
		if len(p.waiting[key]) == 0 {
			delete(p.waiting, key)
		}
		p.mu.Unlock()
	}()
	_, err, _ := p.grow.Do(key, func() (any, error) {
		// A round of its own: the callers' contexts may end, the growth should not.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.w.opts.RoundTimeout)
		defer cancel()
		return nil, p.growLocked(gctx, pair, subject)
	})
	if err != nil {
		return nil, err
	}
	return p.Members(ctx, pair)
}

func (p *Pools) growLocked(ctx context.Context, pair model.RolePair, subject string) error {
	name, subjectLen := pair.PoolName(), len(subject)
	if p.o.Locker != nil {
		unlock, err := p.o.Locker.Lock(ctx, "pool/"+name)
		if err != nil {
			return &lockError{fmt.Errorf("trust: locking proxy pool %s: %w", name, err)}
		}
		defer unlock()
	}
	l, err := p.listed(ctx, pair, true)
	if err != nil {
		return err
	}
	created := l.members
	// Another replica (or an earlier growth) may have made room already: a
	// created member this process knows nothing of, or one with room.
	for _, m := range created {
		if f, ok := p.w.Fill(m); !ok || f.Free(subjectLen) > 0 {
			return nil
		}
	}
	limit := pair.ProxyPool.MaxMembers()
	if len(created) >= limit {
		return p.fullError(pair, len(pair.ProxyMembers())+len(created))
	}
	tmpl := pair.ProxyPool.Elastic.TemplateRoleARN
	doc, err := p.template(ctx, tmpl)
	if err != nil {
		return fmt.Errorf("trust: reading the template of proxy pool %s: %w", name, err)
	}
	// A member created now would start as doc: if the subject does not fit
	// that, no member the pool creates will take it.
	if err := p.fitsEmpty(ctx, name, doc, subject); err != nil {
		return err
	}
	// Enough members for the subjects waiting on this growth (several runs
	// of one user share a per-user subject: one slot).
	p.mu.Lock()
	waiting := len(p.waiting[pair.PoolKey()])
	p.mu.Unlock()
	perMember := 1
	if q, err := p.w.api.TrustPolicySizeQuota(ctx); err == nil {
		if n := model.FreeSlots(q, len(doc), subjectLen); n > 1 {
			perMember = n
		}
	}
	want := min((waiting+perMember-1)/perMember, limit-len(created), 16)
	want = max(want, 1)
	used, quota, err := p.o.IAM.RolesUsage(ctx)
	if err == nil && used+want > quota {
		if want = quota - used; want <= 0 {
			return &RolesQuotaError{Pool: name, Used: used, Quota: quota}
		}
	}
	taken := map[int]bool{}
	for _, n := range l.taken {
		taken[n] = true
	}
	tmplARN, _ := model.ParseRoleARN(tmpl)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		made int
	)
	n := 0
	for range want {
		for n++; taken[n]; n++ {
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			err := p.createMember(ctx, pair, n, tmplARN.Name, doc)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			made++
		}(n)
	}
	wg.Wait()
	p.forget(pair)
	if made > 0 {
		return nil
	}
	return errors.Join(errs...)
}

// fitsEmpty fails with a *SubjectTooLargeError when subject does not fit
// the trust policy doc a new member starts with.
func (p *Pools) fitsEmpty(ctx context.Context, pool, doc, subject string) error {
	quota, err := p.w.api.TrustPolicySizeQuota(ctx)
	if err != nil {
		return fmt.Errorf("trust: reading the trust-policy size quota: %w", err)
	}
	d, err := Parse(doc, p.w.opts.OIDCProvider)
	if err != nil {
		return fmt.Errorf("trust: the template of proxy pool %s: %w", pool, err)
	}
	if _, err := d.Add(subject); err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	if size := d.Size(); size > quota {
		return &SubjectTooLargeError{Pool: pool, Size: size, Quota: quota}
	}
	return nil
}

// createMember creates member n of the pool from the template: its managed
// statement with no subject, the boundary, the tags, then the template's
// inline and attached policies. A member whose policies could not be copied
// is deleted again.
func (p *Pools) createMember(ctx context.Context, pair model.RolePair, n int, template, doc string) error {
	name, e := pair.PoolName(), pair.ProxyPool.Elastic
	role := model.ElasticMemberName(name, n)
	r, err := p.o.IAM.CreateRole(ctx, iam.NewRole{
		Name: role, Path: e.Path, TrustPolicy: doc, PermissionsBoundary: e.PermissionsBoundaryARN,
		Description: fmt.Sprintf("Member %d of proxy-role pool %s, created by irsa-broker from %s", n, name, template),
		Tags:        map[string]string{TagPool: name, TagManagedBy: p.o.ManagedBy, TagTemplate: template},
	})
	if err != nil {
		if iam.IsKind(err, iam.KindLimitExceeded) {
			return &RolesQuotaError{Pool: name, Err: err}
		}
		return fmt.Errorf("trust: creating member %s of proxy pool %s: %w", role, name, err)
	}
	if err := p.o.IAM.CopyRolePolicies(ctx, template, role); err != nil {
		if derr := p.o.IAM.DeleteRole(ctx, role); derr != nil {
			p.log.Error("could not delete a half-created pool member", "pool", name, "role", r.ARN, "error", derr)
		}
		return fmt.Errorf("trust: copying the policies of %s to member %s of proxy pool %s: %w", template, role, name, err)
	}
	p.mu.Lock()
	p.owned[ownedKey{pair.PoolKey(), r.ARN, r.ID}] = true
	p.mu.Unlock()
	p.m.created.WithLabelValues(name).Inc()
	p.log.Info("proxy pool grew", "pool", name, "role", r.ARN, "template", template)
	return nil
}

// template returns the trust policy new members of template's pool start
// with (read at most once a minute).
func (p *Pools) template(ctx context.Context, template string) (string, error) {
	p.mu.Lock()
	t, ok := p.templates[template]
	p.mu.Unlock()
	if ok && p.o.Now().Sub(t.at) < time.Minute {
		return t.doc, nil
	}
	doc, err := p.w.ManagedTemplate(ctx, template)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.templates[template] = templateCache{doc: doc, at: p.o.Now()}
	p.mu.Unlock()
	return doc, nil
}

// Shrink deletes the members elastic pools created that have held no
// subject for their pool's grace period (never less than Fresh, so that no
// replica can still answer from a document naming a subject of a deleted
// member). Each deletion is a round of the member's writer: the check that
// it is empty and the deletion happen under its lock. Run it on one replica
// (the clean-up leader); it keeps when it first saw each member empty.
func (p *Pools) Shrink(ctx context.Context, pairs []model.RolePair) (int, error) {
	deleted := 0
	var errs []error
	for _, pair := range pairs {
		if !p.elastic(pair) {
			continue
		}
		n, err := p.shrink(ctx, pair)
		deleted += n
		if err != nil {
			errs = append(errs, err)
		}
		p.observe(pair, 0)
	}
	return deleted, errors.Join(errs...)
}

func (p *Pools) shrink(ctx context.Context, pair model.RolePair) (int, error) {
	created, err := p.created(ctx, pair, true)
	if err != nil {
		return 0, err
	}
	grace := max(time.Duration(pair.ProxyPool.EmptyGraceSeconds())*time.Second, p.o.Fresh)
	now := p.o.Now()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		deleted int
		slots   = make(chan struct{}, 8) // members handled at once
	)
	for _, role := range created {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			ok, err := p.shrinkMember(ctx, pair, role, now, grace)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				deleted++
			}
		}()
	}
	wg.Wait()
	if deleted > 0 {
		p.forget(pair)
	}
	return deleted, errors.Join(errs...)
}

// shrinkMember deletes one created member if it has been empty for grace.
func (p *Pools) shrinkMember(ctx context.Context, pair model.RolePair, role string, now time.Time, grace time.Duration) (bool, error) {
	st, err := p.w.Inspect(ctx, role)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	since, seen := p.emptySince[role]
	switch {
	case len(st.Subjects) > 0:
		delete(p.emptySince, role)
	case !seen:
		p.emptySince[role] = now
	}
	p.mu.Unlock()
	if len(st.Subjects) > 0 || !seen || now.Sub(since) < grace {
		return false, nil
	}
	arn, _ := model.ParseRoleARN(role)
	ok, err := p.w.DeleteIfEmpty(ctx, role, func(ctx context.Context) error {
		// Under the member's lock, right before deleting: only a role that
		// carries the tags this broker gave it is deleted.
		if _, err := p.checkOwned(ctx, pair, role); err != nil {
			return fmt.Errorf("trust: not deleting %s: %w", role, err)
		}
		return p.o.IAM.DeleteRole(ctx, arn.Name)
	})
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	delete(p.emptySince, role)
	p.mu.Unlock()
	if ok {
		p.m.deleted.WithLabelValues(pair.PoolName()).Inc()
		p.log.Info("deleted an empty pool member", "pool", pair.PoolName(), "role", role, "empty_for", now.Sub(since).String())
	}
	return ok, nil
}

// Stats is what placement knows of a pool's fill, from the documents of the
// members' last rounds (a member without one counts as empty).
type Stats struct {
	Members     int
	FreeSlots   int // estimated for subjects of the typical length
	Size, Quota int // summed over members
	// Capacity is the fill's denominator: the summed quota of the members,
	// and for an elastic pool of the members it may still create.
	Capacity int
}

// Stats reports the pool's fill as the writer last saw it (no IAM call
// beyond the cached elastic listing).
func (p *Pools) Stats(ctx context.Context, pair model.RolePair, subjectLen int) (Stats, error) {
	members, err := p.Members(ctx, pair)
	if err != nil {
		return Stats{}, err
	}
	if subjectLen <= 0 {
		subjectLen = model.TypicalSubjectLength
	}
	var s Stats
	s.Members = len(members)
	quota := 0
	for _, m := range members {
		f, ok := p.w.Fill(m)
		if !ok {
			continue
		}
		quota = max(quota, f.Quota)
		s.Size += f.Size
		s.Quota += f.Quota
		s.FreeSlots += f.Free(subjectLen)
	}
	s.Capacity = s.Quota
	if p.elastic(pair) && quota > 0 {
		s.Capacity += (pair.ProxyPool.MaxMembers() - (len(members) - len(pair.ProxyMembers()))) * quota
	}
	return s, nil
}

// observe refreshes the pool's gauges and alert from what the writer knows.
func (p *Pools) observe(pair model.RolePair, subjectLen int) {
	s, err := p.Stats(context.Background(), pair, subjectLen)
	if err != nil {
		return
	}
	name := pair.PoolName()
	p.m.members.WithLabelValues(name).Set(float64(s.Members))
	p.m.free.WithLabelValues(name).Set(float64(s.FreeSlots))
	if s.Capacity > 0 {
		ratio := float64(s.Size) / float64(s.Capacity)
		p.m.fill.WithLabelValues(name).Set(ratio)
		p.alarm.observe(name, ratio)
	}
}
