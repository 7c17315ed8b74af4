package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Admin actions decided by package irsa.authz (input.request.action).
const (
	ActionMappingRead          = "mapping.read"
	ActionMappingWrite         = "mapping.write"
	ActionMappingDelete        = "mapping.delete"
	ActionServiceAccountWrite  = "service_account.write"
	ActionServiceAccountDelete = "service_account.delete"
	// ActionStatusRead reads the broker's detailed status (/v2/status).
	ActionStatusRead = "status.read"
	// ActionMapForeignWorkload is asked when a caller maps a run someone else
	// started; the default policy denies it (invariant 6).
	ActionMapForeignWorkload = "workload.map_foreign"
)

// Authenticator establishes who is calling.
type Authenticator interface {
	Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error)
}

// PolicyEngine decides grants and admin actions (*policy.Engine).
type PolicyEngine interface {
	Grants(ctx context.Context, in policy.Input, snap model.Snapshot) (policy.Decision, error)
	Allow(ctx context.Context, in policy.Input) (bool, error)
}

// MappingStore persists mappings (core/mapping's stores). Errors are
// classified by the store (model.Classified): not found, unavailable.
type MappingStore interface {
	Snapshot(ctx context.Context) (model.Snapshot, error)
	Put(ctx context.Context, m model.Mapping) error
	Delete(ctx context.Context, org string) error
	// Apply writes a batch in one step, or nothing; it returns the revision
	// after the write. A stale IfRevision is model.KindPrecondition.
	Apply(ctx context.Context, b model.Batch) (revision string, err error)
}

// TrustWriter adds subjects to proxy-role trust policies and takes them out.
type TrustWriter interface {
	// EnsureAdded reports whether the subject was new to the role.
	EnsureAdded(ctx context.Context, roleARN string, subjects ...string) (bool, error)
	Remove(ctx context.Context, roleARN string, subjects ...string) error
}

// ProxyRoles checks that a proxy role is one the broker may edit: IAM has it
// under exactly that ARN (the broker's account, path and name) and its trust
// policy federates the cluster's OIDC provider. *trust.Writer implements it.
type ProxyRoles interface {
	Verify(ctx context.Context, roleARN string) error
}

// ServiceAccounts manages service accounts in the compute namespace.
type ServiceAccounts interface {
	Create(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
}

// Options configure a Service.
type Options struct {
	Auth      Authenticator
	Workloads WorkloadResolver
	Policy    PolicyEngine
	Mappings  MappingStore
	Trust     TrustWriter
	// ProxyRoles, when set, verifies the proxy roles of a mapping before it
	// is stored (the trust writer checks them again before every write).
	ProxyRoles      ProxyRoles
	ServiceAccounts ServiceAccounts
	// Pools, optional, places subjects on proxy-role pools (nil: a pool's
	// subjects all go to its first member, as to a single role).
	Pools PoolPlacer
	// PoolInspector, optional, reads pools for Trust (/v2/trust).
	PoolInspector PoolInspector
	// Pods, optional, names the runs and users behind subjects in Trust.
	Pods Pods
	// LegacySubjects renders subjects as the previous service did:
	// "*:<ns>:<sa>" instead of "system:serviceaccount:<ns>:<sa>".
	LegacySubjects bool
	// Render holds the config renderer's options; RoleSessionNameFromUser puts
	// the caller's username into role_session_name.
	Render                  awsconfig.Options
	RoleSessionNameFromUser bool
	Metrics                 *metrics.Metrics
	Logger                  hclog.Logger
}

// Service is the broker's use cases.
type Service struct {
	o   Options
	log hclog.Logger
}

// New builds a Service; every dependency but ServiceAccounts and Metrics is required.
func New(o Options) (*Service, error) {
	if o.Auth == nil || o.Workloads == nil || o.Policy == nil || o.Mappings == nil || o.Trust == nil {
		return nil, errors.New("broker: Auth, Workloads, Policy, Mappings and Trust are required")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	return &Service{o: o, log: o.Logger.Named("broker")}, nil
}

// Authenticate returns the caller's identity. The plugin protocol's two
// outcomes are classified here, and only here: unauthenticated, or the
// provider unavailable (whatever else went wrong on its side).
func (s *Service) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	id, err := s.o.Auth.Authenticate(ctx, c)
	if err != nil {
		if errors.Is(err, sdk.ErrUnauthenticated) {
			return sdk.Identity{}, model.Wrap(model.KindUnauthenticated, "unauthenticated", "missing or invalid credentials", err)
		}
		return sdk.Identity{}, model.Wrap(model.KindUnavailable, "identity_unavailable", "the identity provider is unavailable", err)
	}
	// Ownership compares user ids: an identity without one would own every
	// pod that lacks the starting-user label. A provider answering so is
	// faulty, and the caller is refused.
	if id.ID == "" {
		s.log.Error("the identity provider authenticated a caller without a user id; refused", "username", id.Username)
		return sdk.Identity{}, model.Errorf(model.KindUpstream, "identity_invalid", "the identity provider returned an identity without a user id")
	}
	return id, nil
}

// MapRequest is one request to map a run's service account to its roles.
type MapRequest struct {
	Caller       sdk.Identity
	RunID        string
	WorkloadType string
	PodToken     string
	// DryRun decides and renders but does not touch IAM (the /v2 preview).
	DryRun    bool
	RequestID string
}

// MapResult is what a run gets.
type MapResult struct {
	Config     awsconfig.Config
	Grants     []model.Grant
	Workload   model.Workload
	Subject    string
	DecisionID string
	// TrustUpdated lists the proxy roles whose trust policy now holds Subject.
	TrustUpdated []string
}

// Map decides the caller's grants for a run, ensures the run's subject on the
// proxy roles that want it, and renders the AWS config. Input is validated
// before anything is written.
func (s *Service) Map(ctx context.Context, req MapRequest) (res MapResult, err error) {
	start := time.Now()
	s.o.Metrics.MappingRequests.Inc()
	defer func() {
		outcome := "success"
		if err != nil {
			outcome = "error"
			s.o.Metrics.FailedMappingRequests.Inc()
		}
		if req.DryRun {
			outcome = "preview_" + outcome
		}
		s.o.Metrics.MapDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	}()

	w, in, err := s.resolveOwned(ctx, req)
	if err != nil {
		return MapResult{}, err
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return MapResult{}, err
	}
	dec, err := s.o.Policy.Grants(ctx, in, snap)
	if err != nil {
		return MapResult{}, fmt.Errorf("policy: %w", err)
	}
	res = MapResult{Grants: withPools(dec.Grants, snap), Workload: w, DecisionID: dec.ID, Subject: s.subject(w)}
	// Render before touching IAM: a grant that cannot be rendered changes nothing.
	pairs := model.Pairs(res.Grants)
	if res.Config, err = s.render(pairs, req.Caller.Username); err != nil {
		return MapResult{}, err
	}
	targets := targetsOf(pairs)
	if req.DryRun || len(targets) == 0 {
		return res, nil
	}
	if err := s.place(ctx, targets, res.Subject); err != nil {
		return MapResult{}, err
	}
	// The config names, for each pool, the member that holds the subject
	// (rendered again only when that is not the first member).
	if placed, moved := placedPairs(pairs, targets); moved {
		if res.Config, err = s.render(placed, req.Caller.Username); err != nil {
			return MapResult{}, err
		}
	}
	var proxies []string
	for _, t := range targets {
		proxies = append(proxies, t.role)
	}
	slices.Sort(proxies)
	proxies = slices.Compact(proxies)
	res.TrustUpdated = proxies
	s.log.Info("mapped workload", "request_id", req.RequestID, "run_id", req.RunID, "user", req.Caller.Username,
		"subject", res.Subject, "roles", proxies, "decision_id", dec.ID)
	return res, nil
}

// resolveOwned validates the request, resolves its workload and checks that
// the caller may map it: their own run, or a foreign one the policy allows
// (invariant 6). It returns the policy input for the grants decision.
func (s *Service) resolveOwned(ctx context.Context, req MapRequest) (model.Workload, policy.Input, error) {
	if err := ValidateRunID(req.RunID); err != nil {
		return model.Workload{}, policy.Input{}, err
	}
	if err := ValidateWorkloadType(req.WorkloadType); err != nil {
		return model.Workload{}, policy.Input{}, err
	}
	w, err := s.o.Workloads.Resolve(ctx, model.WorkloadRequest{RunID: req.RunID, WorkloadType: req.WorkloadType,
		CallerID: req.Caller.ID, Username: req.Caller.Username, PodToken: req.PodToken})
	if err != nil {
		return model.Workload{}, policy.Input{}, err
	}
	in := policy.Input{Identity: req.Caller, Workload: w, Request: policy.Request{Method: "POST", Action: ActionMapForeignWorkload, ID: req.RequestID}}
	// A run with no recorded owner belongs to nobody: only policy may allow it.
	if w.OwnerID == "" || w.OwnerID != req.Caller.ID {
		ok, err := s.o.Policy.Allow(ctx, in)
		if err != nil {
			return model.Workload{}, policy.Input{}, fmt.Errorf("policy: %w", err)
		}
		if !ok {
			return model.Workload{}, policy.Input{}, model.Errorf(model.KindForbidden, "not_workload_owner", "run %s was not started by %s", req.RunID, req.Caller.Username)
		}
	}
	in.Request.Action = "map"
	if req.DryRun {
		in.Request.Action = "preview"
	}
	return w, in, nil
}

// render writes the AWS config of the granted role pairs.
func (s *Service) render(roles []model.RolePair, username string) (awsconfig.Config, error) {
	ro := s.o.Render
	if s.o.RoleSessionNameFromUser && ro.RoleSessionName == "" {
		// Usernames may hold characters STS session names do not.
		ro.RoleSessionName = awsconfig.SessionName(username)
	}
	cfg, err := awsconfig.Render(roles, ro)
	if err != nil {
		return awsconfig.Config{}, model.Wrap(model.KindInvalid, "invalid_grant", "cannot render the AWS config for the granted roles", err)
	}
	return cfg, nil
}

// withPools gives each grant the proxy pool of the mapping pair it came
// from: policies see and return pairs without pools (docs/design/pools.md).
func withPools(grants []model.Grant, snap model.Snapshot) []model.Grant {
	out := grants
	for i, g := range grants {
		if pg := snap.PoolOf(g); pg.ProxyPool != g.ProxyPool {
			if &out[0] == &grants[0] {
				out = slices.Clone(grants)
			}
			out[i] = pg
		}
	}
	return out
}

// subject renders the trust-policy subject of w's service account.
func (s *Service) subject(w model.Workload) string {
	return model.Subject{Namespace: w.Namespace, ServiceAccount: w.ServiceAccount, Legacy: s.o.LegacySubjects}.String()
}

func (s *Service) snapshot(ctx context.Context) (model.Snapshot, error) {
	s.o.Metrics.QueryConfigMap.Inc()
	return s.o.Mappings.Snapshot(ctx)
}

// MyGrants returns what the caller's identity is granted outside any workload.
func (s *Service) MyGrants(ctx context.Context, caller sdk.Identity, requestID string) (policy.Decision, model.Snapshot, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return policy.Decision{}, model.Snapshot{}, err
	}
	dec, err := s.o.Policy.Grants(ctx, policy.Input{Identity: caller, Request: policy.Request{Action: "my_mappings", ID: requestID}}, snap)
	if err != nil {
		return policy.Decision{}, model.Snapshot{}, fmt.Errorf("policy: %w", err)
	}
	dec.Grants = withPools(dec.Grants, snap)
	return dec, snap, nil
}

// Authorize checks that the policy allows caller the admin action.
func (s *Service) Authorize(ctx context.Context, caller sdk.Identity, action, requestID string) error {
	ok, err := s.o.Policy.Allow(ctx, policy.Input{Identity: caller, Request: policy.Request{Action: action, ID: requestID}})
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if !ok {
		return model.Errorf(model.KindForbidden, "forbidden", "%s is not allowed to %s", caller.Username, action)
	}
	return nil
}

// Mappings returns every mapping (admin).
func (s *Service) Mappings(ctx context.Context, caller sdk.Identity, requestID string) (model.Snapshot, error) {
	if err := s.Authorize(ctx, caller, ActionMappingRead, requestID); err != nil {
		return model.Snapshot{}, err
	}
	return s.snapshot(ctx)
}

// PutMapping validates and stores a mapping (admin).
func (s *Service) PutMapping(ctx context.Context, caller sdk.Identity, m model.Mapping, requestID string) error {
	if err := s.Authorize(ctx, caller, ActionMappingWrite, requestID); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	if err := s.checkPools(ctx, []model.Mapping{m}, nil); err != nil {
		return err
	}
	if err := s.verifyProxyRoles(ctx, m); err != nil {
		return err
	}
	if err := s.o.Mappings.Put(ctx, m); err != nil {
		return err
	}
	s.log.Info("mapping written", "request_id", requestID, "org", m.Org, "pairs", len(m.Pairs), "by", caller.Username)
	return nil
}

// checkPools refuses puts whose pools would conflict with another mapping's
// as the mappings would be after the write: a pool name or elastic path that
// another pool uses too (or nests), or a proxy role under an elastic path
// (model.PoolConflicts; docs/design/pools.md, "One pool, one owner"). A
// write racing this check is caught when the store's snapshot is loaded.
func (s *Service) checkPools(ctx context.Context, puts []model.Mapping, deletes []string) error {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	ms := maps.Clone(snap.Mappings)
	if ms == nil {
		ms = map[string]model.Mapping{}
	}
	for _, org := range deletes {
		delete(ms, org)
	}
	orgs := make([]string, 0, len(puts))
	for _, m := range puts {
		ms[m.Org] = m
		orgs = append(orgs, m.Org)
	}
	return model.CheckPoolConflicts(ms, orgs...)
}

// verifyProxyRoles refuses a mapping whose proxy roles the broker would edit
// (update_iam_role_trust_policy) but which IAM knows under another ARN, does
// not have, or which do not federate the cluster's OIDC provider.
func (s *Service) verifyProxyRoles(ctx context.Context, m model.Mapping) error {
	if s.o.ProxyRoles == nil {
		return nil
	}
	for i, p := range m.Pairs {
		if !p.UpdateTrustPolicy {
			continue
		}
		// Every static member of a pool, and an elastic pool's template.
		roles := []struct{ field, arn string }{}
		for j, r := range p.ProxyMembers() {
			f := "proxy_iam_role_arn"
			if j > 0 {
				f = fmt.Sprintf("proxy_pool.members[%d]", j)
			}
			roles = append(roles, struct{ field, arn string }{f, r})
		}
		if p.ProxyPool != nil && p.ProxyPool.Elastic != nil {
			roles = append(roles, struct{ field, arn string }{"proxy_pool.elastic.template_role_arn", p.ProxyPool.Elastic.TemplateRoleARN})
		}
		for _, r := range roles {
			if err := s.o.ProxyRoles.Verify(ctx, r.arn); err != nil {
				if len(m.Pairs) > 1 {
					return model.Prefix(fmt.Sprintf("role pair %d: %s", i+1, r.field), err)
				}
				return model.Prefix(r.field, err)
			}
		}
	}
	return nil
}

// ApplyMappings validates every mapping of b exactly as PutMapping does
// (the mapping, then its proxy roles and pools with IAM) and writes the
// whole batch in one step only when all pass (admin: mapping.write, and
// mapping.delete when b deletes). A refused mapping fails naming its org and
// nothing is written. It returns the revision after the write.
func (s *Service) ApplyMappings(ctx context.Context, caller sdk.Identity, b model.Batch, requestID string) (string, error) {
	if err := s.Authorize(ctx, caller, ActionMappingWrite, requestID); err != nil {
		return "", err
	}
	if len(b.Delete) > 0 {
		if err := s.Authorize(ctx, caller, ActionMappingDelete, requestID); err != nil {
			return "", err
		}
	}
	if err := b.Validate(); err != nil {
		return "", err
	}
	if err := s.checkPools(ctx, b.Put, b.Delete); err != nil {
		return "", err
	}
	for _, m := range b.Put {
		if err := s.verifyProxyRoles(ctx, m); err != nil {
			return "", model.Prefix(fmt.Sprintf("org %q", m.Org), err)
		}
	}
	rev, err := s.o.Mappings.Apply(ctx, b)
	if err != nil {
		return "", err
	}
	s.log.Info("mappings written in one batch", "request_id", requestID, "put", len(b.Put), "deleted", len(b.Delete),
		"orgs", b.Orgs(), "if_revision", b.IfRevision, "revision", rev, "by", caller.Username)
	return rev, nil
}

// DeleteMapping removes an org's mapping (admin).
func (s *Service) DeleteMapping(ctx context.Context, caller sdk.Identity, org, requestID string) error {
	if err := s.Authorize(ctx, caller, ActionMappingDelete, requestID); err != nil {
		return err
	}
	if org == "" {
		return model.Invalid("missing_field", "domino_org is required")
	}
	if err := s.o.Mappings.Delete(ctx, org); err != nil {
		return err
	}
	s.log.Info("mapping deleted", "request_id", requestID, "org", org, "by", caller.Username)
	return nil
}

// CreateServiceAccount creates a managed service account (admin).
func (s *Service) CreateServiceAccount(ctx context.Context, caller sdk.Identity, name, requestID string) error {
	return s.serviceAccount(ctx, caller, name, requestID, true)
}

// DeleteServiceAccount deletes a managed service account (admin).
func (s *Service) DeleteServiceAccount(ctx context.Context, caller sdk.Identity, name, requestID string) error {
	return s.serviceAccount(ctx, caller, name, requestID, false)
}

func (s *Service) serviceAccount(ctx context.Context, caller sdk.Identity, name, requestID string, create bool) error {
	action := ActionServiceAccountDelete
	if create {
		action = ActionServiceAccountWrite
	}
	if err := s.Authorize(ctx, caller, action, requestID); err != nil {
		return err
	}
	if err := ValidateServiceAccountName(name); err != nil {
		return err
	}
	if s.o.ServiceAccounts == nil {
		return model.Errorf(model.KindUnavailable, "service_accounts_unavailable", "service accounts are not managed by this broker (no Kubernetes)")
	}
	var err error
	if create {
		err = s.o.ServiceAccounts.Create(ctx, name)
	} else {
		err = s.o.ServiceAccounts.Delete(ctx, name)
	}
	if err != nil {
		return err
	}
	s.log.Info("service account changed", "request_id", requestID, "name", name, "create", create, "by", caller.Username)
	return nil
}
