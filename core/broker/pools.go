package broker

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// PoolPlacer places a subject on one member of a pair's proxy pool and
// names it (*trust.Pools; docs/design/pools.md). A pair without a pool is a
// pool of one.
type PoolPlacer interface {
	Place(ctx context.Context, pair model.RolePair, subject string) (role string, added bool, err error)
}

// PoolInspector reads pools for /v2/trust (*trust.Pools).
type PoolInspector interface {
	// Members lists a pool's members: static, then created.
	Members(ctx context.Context, pair model.RolePair) ([]string, error)
	// Inspect reads one member's trust policy now.
	Inspect(ctx context.Context, role string) (model.RoleTrust, error)
	// RolesUsage is the account's role count and roles quota (zeros when
	// unknown).
	RolesUsage(ctx context.Context) (used, quota int, err error)
}

// trustTarget is one proxy side (a pool, or a single role) a map request
// places its subject on.
type trustTarget struct {
	pair  model.RolePair
	role  string // where the subject is
	added bool
	err   error
}

// targetsOf returns one target per distinct proxy side of pairs whose trust
// policy the broker edits, ordered by pool key (for a single role, its ARN:
// the order the broker always used).
func targetsOf(pairs []model.RolePair) []*trustTarget {
	seen := map[string]bool{}
	var out []*trustTarget
	for _, p := range pairs {
		if !p.UpdateTrustPolicy || p.ProxyIAMRoleARN == "" || seen[p.PoolKey()] {
			continue
		}
		seen[p.PoolKey()] = true
		out = append(out, &trustTarget{pair: p})
	}
	slices.SortFunc(out, func(a, b *trustTarget) int { return strings.Compare(a.pair.PoolKey(), b.pair.PoolKey()) })
	return out
}

// place puts the subject on every target concurrently (the trust writer
// coalesces with other requests touching the same roles). If any target
// fails, the subject is taken out again where this request added it, so a
// failed request leaves no half-applied grant (docs/design/map-atomicity.md).
func (s *Service) place(ctx context.Context, targets []*trustTarget, subject string) error {
	if len(targets) == 0 {
		return nil
	}
	run := func(t *trustTarget) {
		if s.o.Pools != nil {
			t.role, t.added, t.err = s.o.Pools.Place(ctx, t.pair, subject)
			return
		}
		t.role = t.pair.ProxyIAMRoleARN
		t.added, t.err = s.o.Trust.EnsureAdded(ctx, t.role, subject)
	}
	// The targets in parallel; the last one (the only one, usually) on this
	// goroutine: a map answered from the trust cache then waits on nothing.
	var wg sync.WaitGroup
	for _, t := range targets[:len(targets)-1] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(t)
		}()
	}
	run(targets[len(targets)-1])
	wg.Wait()
	errs := make([]error, 0, len(targets))
	for _, t := range targets {
		errs = append(errs, t.err)
	}
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	// Undo with a context of its own: the request's may be what failed.
	undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, t := range targets {
		if t.err != nil || !t.added {
			continue
		}
		if uerr := s.o.Trust.Remove(undoCtx, t.role, subject); uerr != nil {
			s.log.Error("could not undo a partial mapping; the subject stays until the run ends", "role", t.role, "subject", subject, "error", uerr)
		} else {
			s.log.Info("undid a partial mapping", "role", t.role, "subject", subject)
		}
	}
	return err
}

// placedPairs returns pairs with each pool's proxy role replaced by the
// member that holds the subject, so the rendered config names it, and
// whether any was replaced.
func placedPairs(pairs []model.RolePair, targets []*trustTarget) ([]model.RolePair, bool) {
	at := map[string]string{}
	for _, t := range targets {
		at[t.pair.PoolKey()] = t.role
	}
	out := make([]model.RolePair, len(pairs))
	moved := false
	for i, p := range pairs {
		if r, ok := at[p.PoolKey()]; ok && p.UpdateTrustPolicy && r != "" && r != p.ProxyIAMRoleARN {
			p.ProxyIAMRoleARN = r
			moved = true
		}
		out[i] = p
	}
	return out, moved
}

// TrustState is what /v2/trust shows: every proxy side the broker edits,
// its members and what their trust policies hold.
type TrustState struct {
	Pools []PoolState `json:"pools"`
	// Roles is the account's role count and roles quota (elastic pools
	// create roles); absent when unknown.
	Roles *RolesUsage `json:"roles,omitempty"`
}

// RolesUsage is IAM's role count of the broker's account against its quota.
type RolesUsage struct {
	Used  int `json:"used"`
	Quota int `json:"quota"`
}

// PoolState is one pool (a single proxy role is a pool of one member).
type PoolState struct {
	Name    string   `json:"name"`
	Orgs    []string `json:"orgs"`
	Elastic bool     `json:"elastic"`
	// MaxMembers is the cap on created members (elastic pools).
	MaxMembers int           `json:"max_members,omitempty"`
	Members    []MemberState `json:"members"`
	Subjects   int           `json:"subjects"`
	FreeSlots  int           `json:"free_slots"`
}

// MemberState is one member's trust policy as IAM holds it now.
type MemberState struct {
	Role string `json:"role_arn"`
	// Created is true for the members an elastic pool created.
	Created   bool           `json:"created"`
	Size      int            `json:"size"`
	Quota     int            `json:"quota"`
	FillRatio float64        `json:"fill_ratio"`
	FreeSlots int            `json:"free_slots"`
	Subjects  []SubjectState `json:"subjects"`
	// Error, when set, says why the member could not be read.
	Error string `json:"error,omitempty"`
}

// SubjectState is one subject of a member with the runs and users of the
// live pods that run as it.
type SubjectState struct {
	Subject string   `json:"subject"`
	Runs    []string `json:"runs"`
	Users   []string `json:"users"`
}

// trustReads bounds the members /v2/trust reads at once (each may be a
// GetRole): an admin's look must not make IAM throttle the rounds of map
// requests.
const trustReads = 8

// Trust reads every pool's members and subjects (admin: mapping.read), at
// most trustReads members at once; a member whose last trust-writer round is
// fresh is answered from it (PoolInspector.Inspect).
func (s *Service) Trust(ctx context.Context, caller sdk.Identity, requestID string) (TrustState, error) {
	if err := s.Authorize(ctx, caller, ActionMappingRead, requestID); err != nil {
		return TrustState{}, err
	}
	if s.o.PoolInspector == nil {
		return TrustState{}, model.Errorf(model.KindUnavailable, "trust_unavailable", "this broker does not inspect trust policies")
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return TrustState{}, err
	}
	orgs := map[string][]string{}
	for org, m := range snap.Mappings {
		for _, p := range m.Pairs {
			if p.UpdateTrustPolicy && !slices.Contains(orgs[p.PoolKey()], org) {
				orgs[p.PoolKey()] = append(orgs[p.PoolKey()], org)
			}
		}
	}
	out := TrustState{Pools: []PoolState{}}
	if used, quota, err := s.o.PoolInspector.RolesUsage(ctx); err == nil && quota > 0 {
		out.Roles = &RolesUsage{Used: used, Quota: quota}
	}
	slots := make(chan struct{}, trustReads)
	for _, pair := range snap.Pools() {
		ps := PoolState{Name: pair.PoolName(), Orgs: orgs[pair.PoolKey()], Members: []MemberState{}}
		sort.Strings(ps.Orgs)
		if pair.ProxyPool != nil && pair.ProxyPool.Elastic != nil {
			ps.Elastic, ps.MaxMembers = true, pair.ProxyPool.MaxMembers()
		}
		members, err := s.o.PoolInspector.Members(ctx, pair)
		if err != nil {
			members = pair.ProxyMembers()
			s.log.Warn("cannot list a pool's members", "pool", ps.Name, "error", err)
		}
		ps.Members = make([]MemberState, len(members))
		var wg sync.WaitGroup
		for i, role := range members {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; wg.Done() }()
				ps.Members[i] = s.member(ctx, role, !slices.Contains(pair.ProxyMembers(), role))
			}()
		}
		wg.Wait()
		for _, m := range ps.Members {
			ps.Subjects += len(m.Subjects)
			ps.FreeSlots += m.FreeSlots
		}
		out.Pools = append(out.Pools, ps)
	}
	return out, nil
}

func (s *Service) member(ctx context.Context, role string, created bool) MemberState {
	m := MemberState{Role: role, Created: created, Subjects: []SubjectState{}}
	rt, err := s.o.PoolInspector.Inspect(ctx, role)
	if err != nil {
		_, _, msg := model.Classify(err)
		m.Error = msg
		return m
	}
	m.Size, m.Quota = rt.Size, rt.Quota
	if rt.Quota > 0 {
		m.FillRatio = float64(rt.Size) / float64(rt.Quota)
		m.FreeSlots = model.FreeSlots(rt.Quota, rt.Size, model.TypicalSubjectLength)
	}
	for _, sub := range rt.Subjects {
		m.Subjects = append(m.Subjects, s.subjectState(sub))
	}
	return m
}

// subjectState names the runs and users behind a subject: the live pods
// that run as its service account, or, without a pod view, the run its
// per-run service account is named after.
func (s *Service) subjectState(sub string) SubjectState {
	st := SubjectState{Subject: sub, Runs: []string{}, Users: []string{}}
	ps, err := model.ParseSubject(sub)
	if err != nil {
		return st
	}
	if s.o.Pods != nil && ps.Namespace == s.o.Pods.Namespace() {
		for _, p := range s.o.Pods.LivePodsOf(ps.ServiceAccount) {
			if p.RunID != "" && !slices.Contains(st.Runs, p.RunID) {
				st.Runs = append(st.Runs, p.RunID)
			}
			if p.UserID != "" && !slices.Contains(st.Users, p.UserID) {
				st.Users = append(st.Users, p.UserID)
			}
		}
		sort.Strings(st.Runs)
		sort.Strings(st.Users)
		return st
	}
	if run, ok := strings.CutPrefix(ps.ServiceAccount, brokerapi.RunPrefix); ok {
		st.Runs = append(st.Runs, run)
	}
	return st
}
