package policy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// Queries the broker asks. Policy authors implement these rules.
const (
	GrantsQuery = "data.irsa.grants.grants"
	AllowQuery  = "data.irsa.authz.allow"
)

var (
	grantsRef   = ast.MustParseRef(GrantsQuery)
	grantsBody  = ast.MustParseBody(GrantsQuery)
	allowBody   = ast.MustParseBody(AllowQuery)
	defaultPoll = 10 * time.Second
)

// Options configures an Engine.
type Options struct {
	// PolicyDir holds admin policies (*.rego, not recursive). A file with the
	// base name of a default policy (grants.rego, authz.rego) replaces that
	// default; other files add modules. *_test.rego files are ignored. Empty:
	// the embedded defaults only.
	PolicyDir string
	// Logger for reloads (default: null).
	Logger hclog.Logger
	// Registerer for the irsa_policy_* metrics (nil: not registered).
	Registerer prometheus.Registerer
	// DecisionLog receives one line per decision (default Logger.Named("decision")).
	DecisionLog hclog.Logger
	// Decisions receive every decision in OPA's decision-log shape (a JSON
	// lines writer, the ring of GET /v2/decisions); none by default.
	Decisions []DecisionSink
	// Labels are the decision events' labels (OPA: id and version).
	Labels map[string]string
	// PollInterval is how often Watch re-reads PolicyDir in addition to
	// fsnotify events, for file systems that do not deliver them (default 10s).
	PollInterval time.Duration
}

// Engine evaluates the policies. It is safe for concurrent use; a reload swaps
// the compiled policy atomically and in-flight evaluations finish on the one
// they started with.
type Engine struct {
	opts     Options
	log      hclog.Logger
	dlog     hclog.Logger
	metrics  *metrics
	debounce time.Duration
	// noNotify disables fsnotify in Watch (tests of the poll fallback).
	noNotify bool

	reloadMu sync.Mutex               // serializes reloads
	current  atomic.Pointer[compiled] // the policy serving requests
	status   atomic.Pointer[reloadStatus]
}

// reloadStatus is the outcome of the last reload attempt.
type reloadStatus struct {
	err       error  // nil: the last reload compiled
	failedRev string // revision of the sources that failed
}

// compiled is one loaded policy with its prepared queries.
type compiled struct {
	revision string
	modules  []string // module names, for logs
	compiler *ast.Compiler
	allow    rego.PreparedEvalQuery

	// grants is prepared per mapping revision: the mappings live in an inmem
	// store bound to the prepared query, rebuilt only when the revision changes.
	dataMu sync.Mutex
	grants atomic.Pointer[grantsQuery]
}

type grantsQuery struct {
	mappingRev string
	query      rego.PreparedEvalQuery
}

// New loads the embedded defaults plus PolicyDir. A policy that does not
// compile is an error here (fail closed at start); later reloads keep the last
// good policy instead.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.DecisionLog == nil {
		o.DecisionLog = o.Logger.Named("decision")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPoll
	}
	e := &Engine{
		opts:     o,
		log:      o.Logger.Named("policy"),
		dlog:     o.DecisionLog,
		metrics:  newMetrics(o.Registerer),
		debounce: 100 * time.Millisecond,
	}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Revision identifies the serving policy: a hash of all module names and sources.
func (e *Engine) Revision() string {
	if c := e.current.Load(); c != nil {
		return c.revision
	}
	return ""
}

// Ready reports whether a policy is loaded and serving. A refused reload
// does not make the engine unready: the last good policy keeps serving, and
// every replica watching the same files would otherwise leave rotation at
// once. Status, metrics and logs report a refused reload.
func (e *Engine) Ready() error {
	if e.current.Load() == nil {
		return errors.New("no policy loaded")
	}
	return nil
}

// Status is what the engine serves and how its last reload went.
type Status struct {
	Revision string   `json:"revision"`
	Modules  []string `json:"modules"`
	// ReloadError is the last reload's error, empty when it compiled; the
	// policy of Revision keeps serving meanwhile.
	ReloadError     string `json:"reload_error,omitempty"`
	RefusedRevision string `json:"refused_revision,omitempty"`
}

// Status returns the serving revision and the outcome of the last reload.
// It may name policy files and quote their errors: serve it to admins only.
func (e *Engine) Status() Status {
	var st Status
	if c := e.current.Load(); c != nil {
		st.Revision, st.Modules = c.revision, slices.Clone(c.modules)
	}
	if rs := e.status.Load(); rs != nil && rs.err != nil {
		st.ReloadError, st.RefusedRevision = rs.err.Error(), rs.failedRev
	}
	return st
}

// Reload re-reads and compiles the policies now.
func (e *Engine) Reload(ctx context.Context) error {
	return e.reload(ctx, true)
}

// reload compiles the current sources and swaps them in. Unless force is
// set, sources identical to the serving policy (or to the last refused one)
// are not compiled again.
func (e *Engine) reload(ctx context.Context, force bool) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()

	srcs, err := e.sources()
	if err != nil {
		return e.refuse("", err)
	}
	rev := revisionOf(srcs)
	if !force {
		cur, st := e.current.Load(), e.status.Load()
		if cur != nil && cur.revision == rev && (st == nil || st.err == nil) {
			return nil
		}
		if st != nil && st.err != nil && st.failedRev == rev {
			return st.err
		}
	}
	c, err := compile(ctx, srcs, rev)
	if err != nil {
		return e.refuse(rev, err)
	}
	prev := e.current.Swap(c)
	e.status.Store(&reloadStatus{})
	e.metrics.reloads.WithLabelValues("success").Inc()
	e.metrics.lastOK.Set(1)
	if prev == nil || prev.revision != c.revision {
		e.log.Info("policy loaded", "revision", c.revision, "modules", c.modules)
	}
	return nil
}

func (e *Engine) refuse(rev string, err error) error {
	e.status.Store(&reloadStatus{err: err, failedRev: rev})
	e.metrics.reloads.WithLabelValues("failure").Inc()
	e.metrics.lastOK.Set(0)
	serving := e.Revision()
	e.log.Error("policy refused, keeping the last good one", "revision", rev, "serving", serving, "error", err)
	return err
}

// sources returns the embedded defaults, overridden and extended by PolicyDir.
func (e *Engine) sources() ([]Module, error) { return Sources(e.opts.PolicyDir, false) }

func revisionOf(mods []Module) string {
	h := sha256.New()
	for _, m := range mods {
		fmt.Fprintf(h, "%d:%s%d:%s", len(m.Name), m.Name, len(m.Text), m.Text)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// compile parses and compiles mods and prepares the queries.
func compile(ctx context.Context, mods []Module, rev string) (*compiled, error) {
	names := make([]string, 0, len(mods))
	for _, m := range mods {
		names = append(names, m.Name)
	}
	compiler, err := CompileModules(mods)
	if err != nil {
		return nil, err
	}
	if len(compiler.GetRulesExact(grantsRef)) == 0 {
		return nil, fmt.Errorf("compile policy: no rule defines %s (package irsa.grants, rule grants)", GrantsQuery)
	}
	c := &compiled{revision: rev, modules: names, compiler: compiler}
	allow, err := prepare(ctx, compiler, allowBody, model.Snapshot{})
	if err != nil {
		return nil, err
	}
	c.allow = allow
	// Prepare the grants query once now, so that problems surface at reload.
	g, err := prepare(ctx, compiler, grantsBody, model.Snapshot{})
	if err != nil {
		return nil, err
	}
	c.grants.Store(&grantsQuery{mappingRev: "\x00empty", query: g})
	return c, nil
}

func prepare(ctx context.Context, compiler *ast.Compiler, query ast.Body, snap model.Snapshot) (rego.PreparedEvalQuery, error) {
	store := inmem.NewFromObjectWithOpts(map[string]any{"mappings": mappingsData(snap)},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.ParsedQuery(query),
		rego.Compiler(compiler),
		rego.Store(store),
		// Keep results as AST values: parseGrants reads them directly,
		// skipping OPA's conversion to map[string]any.
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }),
	).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("prepare %s: %w", query, err)
	}
	return pq, nil
}

// mappingsData is data.mappings: {org: [pair, ...]}, always lists; each pair
// object carries its org, so it has the shape of a grant.
func mappingsData(snap model.Snapshot) map[string]any {
	out := make(map[string]any, len(snap.Mappings))
	for org, m := range snap.Mappings {
		pairs := make([]any, 0, len(m.Pairs))
		for _, p := range m.Pairs {
			pairs = append(pairs, map[string]any{
				"org":                          org,
				"iam_role_arn":                 p.IAMRoleARN,
				"proxy_iam_role_arn":           p.ProxyIAMRoleARN,
				"update_iam_role_trust_policy": p.UpdateTrustPolicy,
			})
		}
		out[org] = pairs
	}
	return out
}

// grantsFor returns the grants query bound to snap's mappings, preparing it
// when the mapping revision changed. An empty Revision is never cached.
func (e *Engine) grantsFor(ctx context.Context, c *compiled, snap model.Snapshot) (rego.PreparedEvalQuery, error) {
	if gq := c.grants.Load(); gq != nil && snap.Revision != "" && gq.mappingRev == snap.Revision {
		return gq.query, nil
	}
	if snap.Revision == "" {
		return prepare(ctx, c.compiler, grantsBody, snap)
	}
	c.dataMu.Lock()
	defer c.dataMu.Unlock()
	if gq := c.grants.Load(); gq != nil && gq.mappingRev == snap.Revision {
		return gq.query, nil
	}
	q, err := prepare(ctx, c.compiler, grantsBody, snap)
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	c.grants.Store(&grantsQuery{mappingRev: snap.Revision, query: q})
	return q, nil
}

// Grants evaluates data.irsa.grants.grants for in against snap's mappings.
// Undefined is an explicit deny (no grants); a result that is not a set of
// grant objects is an error. Grants come sorted by org, then ARNs.
func (e *Engine) Grants(ctx context.Context, in Input, snap model.Snapshot) (Decision, error) {
	start := time.Now()
	c := e.current.Load()
	d := Decision{ID: newID(), Revision: c.revision, Grants: []model.Grant{}}
	grants, err := e.evalGrants(ctx, c, in, snap)
	elapsed := time.Since(start)
	e.metrics.eval.WithLabelValues("grants").Observe(elapsed.Seconds())
	e.record(d.ID, GrantsPath, in, c.revision, snap.Revision, start, elapsed, grants, err)
	if err != nil {
		e.dlog.Error("decision failed", e.decisionFields(d.ID, "grants", in, c.revision, elapsed, "mapping_revision", snap.Revision, "error", err)...)
		return Decision{}, fmt.Errorf("policy decision %s: %w", d.ID, err)
	}
	d.Grants = grants
	if e.dlog.IsInfo() {
		e.dlog.Info("decision", e.decisionFields(d.ID, "grants", in, c.revision, elapsed,
			"mapping_revision", snap.Revision, "grants", len(grants), "granted_orgs", grantedOrgs(grants))...)
	}
	return d, nil
}

func (e *Engine) evalGrants(ctx context.Context, c *compiled, in Input, snap model.Snapshot) ([]model.Grant, error) {
	q, err := e.grantsFor(ctx, c, snap)
	if err != nil {
		return nil, err
	}
	rs, err := q.Eval(ctx, rego.EvalParsedInput(inputValue(in)))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", GrantsQuery, err)
	}
	return parseGrants(rs)
}

// Allow evaluates data.irsa.authz.allow for an admin action; undefined is
// false. The authz policy sees the input only (data.mappings is empty).
func (e *Engine) Allow(ctx context.Context, in Input) (bool, error) {
	start := time.Now()
	c := e.current.Load()
	id := newID()
	allowed, err := e.evalAllow(ctx, c, in)
	elapsed := time.Since(start)
	e.metrics.eval.WithLabelValues("allow").Observe(elapsed.Seconds())
	e.record(id, AllowPath, in, c.revision, "", start, elapsed, allowed, err)
	if err != nil {
		e.dlog.Error("decision failed", e.decisionFields(id, "allow", in, c.revision, elapsed, "error", err)...)
		return false, fmt.Errorf("policy decision %s: %w", id, err)
	}
	if e.dlog.IsInfo() {
		e.dlog.Info("decision", e.decisionFields(id, "allow", in, c.revision, elapsed, "allowed", allowed)...)
	}
	return allowed, nil
}

func (e *Engine) evalAllow(ctx context.Context, c *compiled, in Input) (bool, error) {
	rs, err := c.allow.Eval(ctx, rego.EvalParsedInput(inputValue(in)))
	if err != nil {
		return false, fmt.Errorf("evaluate %s: %w", AllowQuery, err)
	}
	if len(rs) == 0 {
		return false, nil
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false, fmt.Errorf("%s: malformed result: %d results", AllowQuery, len(rs))
	}
	b, ok := rs[0].Expressions[0].Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("%s: malformed result: want a boolean, got %s", AllowQuery, typeName(rs[0].Expressions[0].Value))
	}
	return bool(b), nil
}

// record hands the decision to the decision sinks, in OPA's shape, with
// the input scrubbed of anything that may be a credential.
func (e *Engine) record(id, path string, in Input, rev, mappingRev string, ts time.Time, elapsed time.Duration, result any, err error) {
	if len(e.opts.Decisions) == 0 {
		return
	}
	scrubbed, erased := Scrub(in)
	ev := &DecisionEvent{
		Labels:     e.opts.Labels,
		DecisionID: id,
		Revision:   rev,
		Bundles:    map[string]BundleInfo{"policy": {Revision: rev}},
		Path:       path,
		Input:      &scrubbed,
		Erased:     erased,
		Timestamp:  ts.UTC(),
		Metrics:    map[string]any{"timer_rego_query_eval_ns": elapsed.Nanoseconds()},
	}
	if path == GrantsPath {
		ev.Bundles["mappings"] = BundleInfo{Revision: mappingRev}
	}
	if err != nil {
		ev.Error = &DecisionError{Code: "eval_error", Message: err.Error()}
	} else {
		ev.Result = result
	}
	for _, s := range e.opts.Decisions {
		s.LogDecision(ev)
	}
}

// decisionFields are the structured fields of a decision-log line. They never
// include credentials: the Input carries none.
func (e *Engine) decisionFields(id, query string, in Input, rev string, elapsed time.Duration, extra ...any) []any {
	f := []any{
		"decision_id", id,
		"query", query,
		"user_id", in.Identity.ID,
		"username", in.Identity.Username,
		"run_id", in.Workload.RunID,
		"action", in.Request.Action,
		"policy_revision", rev,
		"duration", elapsed,
	}
	if in.Request.ID != "" {
		f = append(f, "request_id", in.Request.ID)
	}
	return append(f, extra...)
}

func grantedOrgs(gs []model.Grant) []string {
	orgs := make([]string, 0, len(gs))
	for _, g := range gs {
		if len(orgs) == 0 || orgs[len(orgs)-1] != g.Org {
			orgs = append(orgs, g.Org)
		}
	}
	return orgs
}

var (
	orgKey   = ast.StringTerm("org")
	assetKey = ast.StringTerm("iam_role_arn")
	proxyKey = ast.StringTerm("proxy_iam_role_arn")
	flagKey  = ast.StringTerm("update_iam_role_trust_policy")
)

// parseGrants turns the query result (AST values, see prepare) into sorted
// grants. ARNs are not validated here: consumers (trust, awsconfig) do.
func parseGrants(rs rego.ResultSet) ([]model.Grant, error) {
	if len(rs) == 0 {
		return []model.Grant{}, nil // undefined: explicit deny
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("%s: malformed result: %d results", GrantsQuery, len(rs))
	}
	set, ok := rs[0].Expressions[0].Value.(ast.Set)
	if !ok {
		return nil, fmt.Errorf("%s: malformed result: want a set of grants, got %v", GrantsQuery, typeName(rs[0].Expressions[0].Value))
	}
	out := make([]model.Grant, 0, set.Len())
	var bad *ast.Term
	set.Until(func(t *ast.Term) bool {
		g, ok := grantOf(t)
		if !ok {
			bad = t
			return true
		}
		out = append(out, g)
		return false
	})
	if bad != nil {
		return nil, fmt.Errorf("%s: malformed grant (want {org, iam_role_arn, proxy_iam_role_arn: non-empty strings; update_iam_role_trust_policy: boolean}), got a %s", GrantsQuery, typeName(bad.Value))
	}
	slices.SortFunc(out, compareGrants)
	return out, nil
}

func grantOf(t *ast.Term) (model.Grant, bool) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return model.Grant{}, false
	}
	str := func(k *ast.Term) (string, bool) {
		v := obj.Get(k)
		if v == nil {
			return "", false
		}
		s, ok := v.Value.(ast.String)
		return string(s), ok && s != ""
	}
	var g model.Grant
	var ok1, ok2, ok3, ok4 bool
	g.Org, ok1 = str(orgKey)
	g.IAMRoleARN, ok2 = str(assetKey)
	g.ProxyIAMRoleARN, ok3 = str(proxyKey)
	if f := obj.Get(flagKey); f != nil {
		var b ast.Boolean
		b, ok4 = f.Value.(ast.Boolean)
		g.UpdateTrustPolicy = bool(b)
	}
	return g, ok1 && ok2 && ok3 && ok4
}

// typeName names a result's Rego type for error messages without printing
// its content.
func typeName(v any) string {
	if av, ok := v.(ast.Value); ok {
		return ast.ValueName(av)
	}
	return fmt.Sprintf("%T", v)
}

func compareGrants(a, b model.Grant) int {
	if c := strings.Compare(a.Org, b.Org); c != 0 {
		return c
	}
	if c := strings.Compare(a.IAMRoleARN, b.IAMRoleARN); c != 0 {
		return c
	}
	if c := strings.Compare(a.ProxyIAMRoleARN, b.ProxyIAMRoleARN); c != 0 {
		return c
	}
	switch {
	case a.UpdateTrustPolicy == b.UpdateTrustPolicy:
		return 0
	case !a.UpdateTrustPolicy:
		return -1
	default:
		return 1
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
