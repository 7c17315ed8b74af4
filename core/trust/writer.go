package trust

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/prometheus/client_golang/prometheus"
)

// IAM is what the writer needs from IAM; *iam.Client implements it.
type IAM interface {
	// GetRole returns the role as IAM knows it: its ARN and its trust
	// policy (URL-decoded or not).
	GetRole(ctx context.Context, roleName string) (iam.Role, error)
	// UpdateTrustPolicy replaces the role's trust policy.
	UpdateTrustPolicy(ctx context.Context, roleName, doc string) error
	// TrustPolicySizeQuota is the account's AssumeRolePolicySizeQuota.
	TrustPolicySizeQuota(ctx context.Context) (int, error)
}

// Locker serializes the writes to one role across broker replicas (a
// Kubernetes Lease, for instance). The writer holds the lock for one
// read-modify-write round.
type Locker interface {
	Lock(ctx context.Context, roleARN string) (unlock func(), err error)
}

// PruneFunc returns which of subjects belong to workloads that have ended.
// The writer calls it only when a change would not fit the size quota.
type PruneFunc func(ctx context.Context, roleARN string, subjects []string) (stale []string, err error)

// DefaultRoundTimeout bounds one read-modify-write round (lock, quota,
// GetRole, UpdateAssumeRolePolicy, retries included).
const DefaultRoundTimeout = time.Minute

// WriterOptions configures NewWriter.
type WriterOptions struct {
	// OIDCProvider is the cluster's provider, e.g.
	// "oidc.eks.us-west-2.amazonaws.com/id/ABC" (an https:// issuer URL works too).
	OIDCProvider string
	// Prune, optional, names stale subjects when a role's policy is full.
	Prune PruneFunc
	// Locker, optional, serializes writes across replicas; nil serializes
	// within this process only.
	Locker Locker
	// RoundTimeout bounds one round; DefaultRoundTimeout when zero.
	RoundTimeout time.Duration
	// CacheTTL is the staleness Ensure accepts: while the document this
	// writer last read or wrote for a role is younger than CacheTTL (counted
	// from the GetRole of that round) and already grants every subject,
	// Ensure returns at once, without a round and without any IAM call.
	// Zero turns this off (every Ensure does a round). Remove always does a
	// round. See "Answering from the last round" in docs/design/trust-writer.md.
	CacheTTL time.Duration
	// Now, optional, is the clock CacheTTL is measured with (tests).
	Now func() time.Time
	// Alert, optional, is told when a role's trust policy passes AlertRatio
	// of the size quota.
	Alert  FillAlert
	Logger hclog.Logger
	// Registerer, optional, receives the writer's metrics.
	Registerer prometheus.Registerer
}

// SizeError: the change does not fit the account's trust-policy size quota,
// even after pruning.
type SizeError struct {
	Role        string // role ARN
	Size, Quota int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("trust policy of role %s would be %d characters, over the quota of %d", e.Role, e.Size, e.Quota)
}

// Classify implements model.Classified.
func (e *SizeError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "trust_policy_too_large", e.Error()
}

// NoManagedStatementError: the role's trust policy has no statement the
// broker may edit. errors.Is(err, ErrNoManagedStatement) holds.
type NoManagedStatementError struct {
	Role, Provider string
}

func (e *NoManagedStatementError) Error() string {
	return fmt.Sprintf("trust policy of role %s has no statement allowing %s to the OIDC provider %s",
		e.Role, ActionAssumeRoleWithWebIdentity, e.Provider)
}

// Is makes errors.Is(err, ErrNoManagedStatement) and errors.Is(err,
// model.ErrRoleNotManaged) true.
func (e *NoManagedStatementError) Is(target error) bool {
	return target == ErrNoManagedStatement || target == model.ErrRoleNotManaged
}

// Classify implements model.Classified: IAM holds a role the broker cannot edit.
func (e *NoManagedStatementError) Classify() (model.Kind, string, string) {
	return model.KindMisconfigured, "trust_policy_unmanaged", e.Error()
}

// MalformedPolicyError: the trust policy IAM returned for the role could
// not be read. errors.Is(err, ErrMalformedDocument) holds.
type MalformedPolicyError struct {
	Role string
	Err  error
}

func (e *MalformedPolicyError) Error() string {
	return fmt.Sprintf("trust policy of role %s cannot be read: %v", e.Role, e.Err)
}

func (e *MalformedPolicyError) Unwrap() error { return e.Err }

// Classify implements model.Classified.
func (e *MalformedPolicyError) Classify() (model.Kind, string, string) {
	return model.KindMisconfigured, "trust_policy_malformed", e.Error()
}

// RoleMismatchError: IAM calls roles by name within the caller's account, so
// a role ARN whose account, path or name differs from what GetRole answers
// names another role than the one IAM would change. The writer refuses it
// before any write (see docs/design/role-arns.md).
type RoleMismatchError struct {
	Role   string // the ARN asked for
	Actual string // the ARN GetRole returned for the same name
}

func (e *RoleMismatchError) Error() string {
	want, err1 := model.ParseRoleARN(e.Role)
	got, err2 := model.ParseRoleARN(e.Actual)
	if err1 == nil && err2 == nil && want.AccountID != got.AccountID {
		return fmt.Sprintf("proxy role %s is in account %s, but the broker's IAM account is %s (GetRole answered %s); the broker edits trust policies only in its own account",
			e.Role, want.AccountID, got.AccountID, e.Actual)
	}
	return fmt.Sprintf("proxy role %s does not match the role IAM has under that name: %s (account, path and name must be exactly as IAM spells them)", e.Role, e.Actual)
}

// Classify implements model.Classified.
func (e *RoleMismatchError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "proxy_role_mismatch", e.Error()
}

// UnusableRoleError: Verify found that the writer could never edit the role
// (missing, another ARN, no managed statement): the caller's input is wrong,
// retrying will not help.
type UnusableRoleError struct {
	Role   string
	Reason string
	Err    error
}

func (e *UnusableRoleError) Error() string { return e.Reason }
func (e *UnusableRoleError) Unwrap() error { return e.Err }

// Classify implements model.Classified.
func (e *UnusableRoleError) Classify() (model.Kind, string, string) {
	return model.KindConflict, "proxy_role_unusable", e.Error()
}

// Writer applies subject additions and removals to trust policies. Per role,
// rounds run one at a time; requests arriving while a round is in flight
// queue up and the next round applies all of them with one GetRole and at
// most one UpdateAssumeRolePolicy (group commit). See
// docs/design/trust-writer.md.
type Writer struct {
	api  IAM
	opts WriterOptions
	log  hclog.Logger
	m    *writerMetrics
	// alarm reports roles passing AlertRatio of the size quota.
	alarm *alarm

	mu     sync.Mutex
	queues map[string]*roleQueue // role ARN → queue; present while a runner is active
	// known remembers, per role, the last document this writer read or
	// wrote: a round whose GetRole returns exactly that text skips parsing
	// it, and Ensure answers from it while it is younger than CacheTTL.
	known map[string]knownDoc
}

// knownDoc is a role's trust policy as a round of this writer left it.
type knownDoc struct {
	doc   *Document // never mutated once stored (its text is memoized)
	at    time.Time // when that round's GetRole started
	quota int       // the size quota that round read
	// The document's subject count and size, counted once when stored:
	// placement reads them for every member it considers.
	subjects, size int
}

type roleQueue struct {
	pending []*request
	// removals counts Remove requests queued or in a round and not yet
	// answered: while there are any, Ensure does not answer from the
	// known document (the removal may concern its subject, and a request
	// that came later must not be ordered before it).
	removals int
}

type request struct {
	ctx         context.Context
	add, remove []string
	done        chan error // buffered: the runner never blocks on it
	// added is set by the runner before done is sent: the round wrote at
	// least one of add that the policy did not grant before.
	added bool
	// probe, when set, asks whether the round's document grants this
	// subject (held); a batch of probes only takes no lock and writes nothing.
	probe string
	held  bool
	// deleteIfEmpty, when set, is called under the round's lock when the
	// document the round leaves grants no subject at all (deleted tells);
	// the role is forgotten afterwards.
	deleteIfEmpty func(ctx context.Context) error
	deleted       bool
	// noPrune: this request's additions do not make the round ask Prune
	// for room (WithoutPrune).
	noPrune bool
}

type noPruneKey struct{}

// WithoutPrune marks ctx so that an Ensure with it does not make its round
// prune stale subjects when the role is full: it gets a *SizeError instead.
// Pools place with it while another member may have room, and prune only
// when every member is full (docs/design/pools.md): a prune judges staleness
// from this replica's pod cache, which may not yet have seen a pod another
// replica just mapped.
func WithoutPrune(ctx context.Context) context.Context {
	return context.WithValue(ctx, noPruneKey{}, true)
}

// prunes reports whether a request of batch adds subjects and allows pruning.
func prunes(batch []*request) bool {
	for _, r := range batch {
		if len(r.add) > 0 && !r.noPrune {
			return true
		}
	}
	return false
}

// NewWriter returns a Writer over api.
func NewWriter(api IAM, opts WriterOptions) *Writer {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.RoundTimeout <= 0 {
		opts.RoundTimeout = DefaultRoundTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.OIDCProvider = NormalizeProvider(opts.OIDCProvider)
	return &Writer{
		api:    api,
		opts:   opts,
		log:    opts.Logger.Named("trust"),
		m:      newWriterMetrics(opts.Registerer, opts.Logger),
		alarm:  newAlarm("role", opts.Alert),
		queues: map[string]*roleQueue{},
		known:  map[string]knownDoc{},
	}
}

// Ensure makes each subject ("system:serviceaccount:<ns>:<sa>", or the
// legacy form) trusted by the role, written in the form WriterOptions asks
// for. It returns once the change is in IAM (or was already there), or with
// the error of the round that carried it. If ctx ends first, it returns
// ctx's error and the change may or may not be applied. With
// WriterOptions.CacheTTL, "already there" may be judged from the document
// of this writer's last round for the role, at most CacheTTL old.
func (w *Writer) Ensure(ctx context.Context, roleARN string, subjects ...string) error {
	_, err := w.EnsureAdded(ctx, roleARN, subjects...)
	return err
}

// EnsureAdded is Ensure that also tells whether this call's round wrote a
// subject the policy did not grant before (so a caller undoing a failed
// multi-role request removes only what it added).
func (w *Writer) EnsureAdded(ctx context.Context, roleARN string, subjects ...string) (bool, error) {
	arn, err := w.check(roleARN)
	if err != nil {
		return false, err
	}
	add := make([]string, 0, len(subjects))
	for _, s := range subjects {
		ps, err := model.ParseSubject(s)
		if err != nil {
			return false, fmt.Errorf("trust: %w", err)
		}
		add = append(add, ps.String())
	}
	if len(add) == 0 {
		return false, nil
	}
	if w.grantedRecently(arn.String(), add) {
		return false, nil
	}
	req := &request{ctx: ctx, add: add, noPrune: ctx.Value(noPruneKey{}) != nil}
	if err := w.submit(ctx, arn, req); err != nil {
		return false, err
	}
	return req.added, nil
}

// Remove revokes each subject (both its exact and legacy forms) from the
// role. Semantics as for Ensure.
func (w *Writer) Remove(ctx context.Context, roleARN string, subjects ...string) error {
	arn, err := w.check(roleARN)
	if err != nil {
		return err
	}
	for _, s := range subjects {
		if _, err := model.ParseSubject(s); err != nil {
			return fmt.Errorf("trust: %w", err)
		}
	}
	if len(subjects) == 0 {
		return nil
	}
	return w.submit(ctx, arn, &request{ctx: ctx, remove: append([]string(nil), subjects...)})
}

// Subjects lists the subjects the role's managed statements grant now.
func (w *Writer) Subjects(ctx context.Context, roleARN string) ([]string, error) {
	arn, err := w.check(roleARN)
	if err != nil {
		return nil, err
	}
	doc, err := w.read(ctx, arn)
	if err != nil {
		return nil, err
	}
	return doc.Subjects(), nil
}

// Verify checks that roleARN is a role the writer may edit: IAM has it with
// exactly that ARN (the broker's account, the same path and name) and its
// trust policy has a statement federating the configured OIDC provider.
// Mapping writes call it so that a wrong proxy role is refused at once
// rather than at a workload's first request.
//
// A role IAM does not have, knows under another ARN, or whose policy has no
// managed statement is an *UnusableRoleError; other errors (IAM unreachable,
// throttled, denied) are returned as they are.
func (w *Writer) Verify(ctx context.Context, roleARN string) error {
	arn, err := w.check(roleARN)
	if err != nil {
		return err
	}
	_, err = w.read(ctx, arn)
	var (
		ie  *iam.Error
		rme *RoleMismatchError
		nme *NoManagedStatementError
	)
	switch {
	case errors.As(err, &ie) && ie.Kind == iam.KindNoSuchEntity:
		return &UnusableRoleError{Role: arn.String(), Reason: fmt.Sprintf("IAM has no role named %s in the broker's account", arn.Name), Err: err}
	case errors.As(err, &rme):
		return &UnusableRoleError{Role: arn.String(), Reason: rme.Error(), Err: err}
	case errors.As(err, &nme):
		return &UnusableRoleError{Role: arn.String(), Reason: nme.Error(), Err: err}
	}
	return err
}

// read returns the role's trust policy after checking that IAM's role is
// the one arn names and that the policy has a managed statement.
func (w *Writer) read(ctx context.Context, arn model.RoleARN) (*Document, error) {
	role := arn.String()
	r, err := w.api.GetRole(ctx, arn.Name)
	if err != nil {
		return nil, fmt.Errorf("trust: reading the trust policy of role %s: %w", role, err)
	}
	if r.ARN != role {
		return nil, &RoleMismatchError{Role: role, Actual: r.ARN}
	}
	doc, err := w.parse(role, r.TrustPolicy)
	if err != nil {
		return nil, &MalformedPolicyError{Role: role, Err: err}
	}
	if doc.ManagedStatements() == 0 {
		return nil, &NoManagedStatementError{Role: role, Provider: w.opts.OIDCProvider}
	}
	return doc, nil
}

func (w *Writer) check(roleARN string) (model.RoleARN, error) {
	if w.opts.OIDCProvider == "" {
		return model.RoleARN{}, errors.New("trust: the writer has no OIDC provider configured")
	}
	arn, err := model.ParseRoleARN(roleARN)
	if err != nil {
		return model.RoleARN{}, fmt.Errorf("trust: %w", err)
	}
	return arn, nil
}

func (w *Writer) submit(ctx context.Context, arn model.RoleARN, req *request) error {
	req.done = make(chan error, 1)
	key := arn.String()
	w.mu.Lock()
	q, running := w.queues[key]
	if !running {
		q = &roleQueue{}
		w.queues[key] = q
	}
	q.pending = append(q.pending, req)
	if len(req.remove) > 0 {
		q.removals++
	}
	w.mu.Unlock()
	if !running {
		go w.run(arn, q)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("trust: waiting for the trust policy of role %s: %w", arn, ctx.Err())
	}
}

// run executes rounds for one role until its queue is empty.
func (w *Writer) run(arn model.RoleARN, q *roleQueue) {
	key := arn.String()
	for {
		w.mu.Lock()
		batch := q.pending
		q.pending = nil
		if len(batch) == 0 {
			delete(w.queues, key)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()

		removals := 0
		for _, r := range batch {
			if len(r.remove) > 0 {
				removals++
			}
		}
		live := batch[:0]
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.done <- err // nobody waits; keeps the contract simple
				continue
			}
			live = append(live, r)
		}
		if len(live) > 0 {
			w.round(arn, live)
		}
		if removals > 0 {
			w.mu.Lock()
			q.removals -= removals
			w.mu.Unlock()
		}
	}
}

// round is one read-modify-write of the role's trust policy for batch.
func (w *Writer) round(arn model.RoleARN, batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.RoundTimeout)
	defer cancel()
	start := time.Now()
	results := make([]error, len(batch))
	outcome, err := w.commit(ctx, arn, batch, results)
	w.m.observeRound(outcome, len(batch), time.Since(start))
	if err != nil {
		// Whatever failed (lock, IAM, the document itself), what this writer
		// knew of the role is no longer to be relied on.
		w.remember(arn.String(), nil, time.Time{}, 0)
		w.m.countError(err)
		w.log.Warn("trust policy round failed", "role", arn.String(), "requests", len(batch), "error", err)
	}
	for i, r := range batch {
		e := results[i]
		if err != nil {
			e = err
		}
		if e != nil && err == nil {
			w.m.countError(e)
		}
		r.done <- e
	}
}

// commit does the round's work. A returned error fails the whole batch;
// otherwise results holds each request's own outcome.
func (w *Writer) commit(ctx context.Context, arn model.RoleARN, batch []*request, results []error) (string, error) {
	role := arn.String()
	writes := false
	for _, r := range batch {
		writes = writes || len(r.add) > 0 || len(r.remove) > 0 || r.deleteIfEmpty != nil
	}
	if w.opts.Locker != nil && writes {
		unlock, err := w.opts.Locker.Lock(ctx, role)
		if err != nil {
			return "failed", &lockError{fmt.Errorf("trust: locking role %s: %w", role, err)}
		}
		defer unlock()
	}
	quota, err := w.api.TrustPolicySizeQuota(ctx)
	if err != nil {
		return "failed", fmt.Errorf("trust: reading the trust-policy size quota: %w", err)
	}
	readAt := w.opts.Now()
	orig, err := w.read(ctx, arn)
	if err != nil {
		return "failed", err
	}

	base := orig
	doc := apply(base.Clone(), batch, results)
	size := doc.Size()
	pruned := 0
	if size > quota && w.opts.Prune != nil && prunes(batch) {
		if base, pruned = w.prune(ctx, role, orig, batch); pruned > 0 {
			clear(results)
			doc = apply(base.Clone(), batch, results)
			size = doc.Size()
		}
	}
	if size > quota {
		// Admit requests in arrival order while they fit; the others fail.
		clear(results)
		doc = base.Clone()
		size = doc.Size()
		for i, r := range batch {
			next := apply(doc.Clone(), batch[i:i+1], results[i:i+1])
			if results[i] != nil {
				continue
			}
			if ns := next.Size(); ns > quota && ns > size && len(r.add) > 0 {
				results[i] = &SizeError{Role: role, Size: ns, Quota: quota}
				continue
			}
			doc, size = next, next.Size()
		}
	}

	out := doc.String()
	if out == orig.String() {
		w.remember(role, orig, readAt, quota)
		w.observeSize(role, orig, quota)
		w.log.Debug("trust policy unchanged", "role", role, "requests", len(batch))
		w.afterRound(ctx, role, orig, batch, results)
		return "unchanged", nil
	}
	if err := w.api.UpdateTrustPolicy(ctx, arn.Name, out); err != nil {
		return "failed", fmt.Errorf("trust: updating the trust policy of role %s: %w", role, err)
	}
	w.remember(role, doc, readAt, quota)
	for i, r := range batch {
		if results[i] != nil {
			continue
		}
		for _, a := range r.add {
			if !orig.Has(a) {
				r.added = true
				break
			}
		}
	}
	w.observeSize(role, doc, quota)
	w.log.Debug("trust policy written", "role", role, "requests", len(batch),
		"pruned", pruned, "size", size, "quota", quota)
	w.afterRound(ctx, role, doc, batch, results)
	return "written", nil
}

// afterRound answers the batch's probes from doc, the document the round
// left in IAM, and deletes the role for a deleteIfEmpty request when doc
// grants no subject (still under the round's lock).
func (w *Writer) afterRound(ctx context.Context, role string, doc *Document, batch []*request, results []error) {
	empty := len(doc.Subjects()) == 0
	for i, r := range batch {
		if r.probe != "" {
			r.held = doc.Has(r.probe)
		}
		if r.deleteIfEmpty == nil || !empty || results[i] != nil {
			continue
		}
		if err := r.deleteIfEmpty(ctx); err != nil {
			results[i] = err
			continue
		}
		r.deleted = true
		w.remember(role, nil, time.Time{}, 0)
		empty = false // once
	}
}

func (w *Writer) observeSize(role string, doc *Document, quota int) {
	w.m.observeSize(role, doc, quota)
	if quota > 0 {
		w.alarm.observe(role, float64(doc.Size())/float64(quota))
	}
}

// parse parses the role's current trust policy, reusing the document of the
// previous round when IAM returned exactly the text that round read or wrote
// (the common case: nobody else edits proxy roles). Rounds of one role never
// overlap, so the entry is not shared while in use; callers get a clone.
func (w *Writer) parse(role, raw string) (*Document, error) {
	w.mu.Lock()
	prev := w.known[role].doc
	w.mu.Unlock()
	if prev != nil && prev.String() == raw {
		return prev.Clone(), nil
	}
	return Parse(raw, w.opts.OIDCProvider)
}

// remember keeps doc (nil forgets) as the role's last known document, as
// IAM held it at `at`.
func (w *Writer) remember(role string, doc *Document, at time.Time, quota int) {
	if doc != nil {
		doc = doc.Clone()
		_ = doc.String() // memoized now: readers never write to it
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if doc == nil {
		delete(w.known, role)
		return
	}
	w.known[role] = knownDoc{doc: doc, at: at, quota: quota, subjects: len(doc.Subjects()), size: doc.Size()}
}

// fresh returns the document of role's last round when a request may be
// answered from it: it is younger than ttl and no Remove of the role is
// pending (the removal may concern the subject asked about). why says why
// not: "miss" (no document), "removing" or "stale".
func (w *Writer) fresh(role string, ttl time.Duration) (k knownDoc, why string) {
	w.mu.Lock()
	k = w.known[role]
	q := w.queues[role]
	removing := q != nil && q.removals > 0
	w.mu.Unlock()
	switch {
	case k.doc == nil:
		return k, "miss"
	case removing:
		return k, "removing"
	case w.opts.Now().Sub(k.at) >= ttl:
		return k, "stale"
	}
	return k, ""
}

// grantedRecently reports whether Ensure may answer without a round: the
// cache is on, the role's known document is younger than CacheTTL, no
// Remove of the role is pending, and the document grants every subject
// (as a round would find it: nothing to add, nothing to refuse).
func (w *Writer) grantedRecently(role string, add []string) bool {
	if w.opts.CacheTTL <= 0 {
		return false
	}
	k, result := w.fresh(role, w.opts.CacheTTL)
	switch {
	case result != "":
	case k.doc.checkAdd(add) != nil:
		result = "miss"
	default:
		result = "hit"
		for _, s := range add {
			if !k.doc.Has(s) {
				result = "miss"
				break
			}
		}
	}
	w.m.cache.WithLabelValues(result).Inc()
	return result == "hit"
}

// apply applies each request to doc in order, recording per-request errors
// (a failing request changes nothing).
func apply(doc *Document, batch []*request, results []error) *Document {
	for i, r := range batch {
		if err := doc.checkAdd(r.add); len(r.add) > 0 && err != nil {
			results[i] = fmt.Errorf("trust: %w", err)
			continue
		}
		if len(r.remove) > 0 {
			_, _ = doc.Remove(r.remove...) // cannot fail: the document has managed statements
		}
		if len(r.add) > 0 {
			_, _ = doc.Add(r.add...) // checked above
		}
	}
	return doc
}

// prune asks the Prune callback which subjects are stale and returns the
// original document without them. Subjects this batch adds are never
// pruned. A failing callback is logged and prunes nothing.
func (w *Writer) prune(ctx context.Context, role string, orig *Document, batch []*request) (*Document, int) {
	adding := map[string]bool{}
	for _, r := range batch {
		for _, s := range r.add {
			if ps, err := model.ParseSubject(s); err == nil {
				adding[ps.Exact()] = true
				adding[ps.LegacyForm()] = true
			}
		}
	}
	var current []string
	for _, s := range orig.Subjects() {
		if !adding[s] {
			current = append(current, s)
		}
	}
	stale, err := w.opts.Prune(ctx, role, current)
	if err != nil {
		w.m.countError(&pruneError{err})
		w.log.Warn("pruning stale subjects failed", "role", role, "error", err)
		return orig, 0
	}
	var drop []string
	for _, s := range stale {
		if !adding[s] {
			drop = append(drop, s)
		}
	}
	if len(drop) == 0 {
		return orig, 0
	}
	base := orig.Clone()
	before := len(base.Subjects())
	_, _ = base.Remove(drop...)
	n := before - len(base.Subjects())
	w.m.pruned.Add(float64(n))
	w.log.Info("pruned stale subjects", "role", role, "count", n)
	return base, n
}

type lockError struct{ err error }

func (e *lockError) Error() string { return e.err.Error() }
func (e *lockError) Unwrap() error { return e.err }

type pruneError struct{ err error }

func (e *pruneError) Error() string { return e.err.Error() }
func (e *pruneError) Unwrap() error { return e.err }

var _ IAM = (*iam.Client)(nil)
