package trust

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// What the writer knows and can tell of roles' fill, for proxy-role pools
// (pool.go). None of it writes a trust policy.

// RoleFill is what a round last saw of a role's trust policy.
type RoleFill struct {
	Subjects    int       // subjects granted
	Size, Quota int       // characters as IAM counts them; AssumeRolePolicySizeQuota
	At          time.Time // when that round's GetRole started
}

// Free estimates how many more subjects as long as subject fit: the room
// left under the quota over one more value's cost (the quoted string and a
// comma).
func (f RoleFill) Free(subjectLen int) int { return model.FreeSlots(f.Quota, f.Size, subjectLen) }

// Fill returns what the writer's last round of role saw, and false when it
// has none (no round yet, or the last one failed).
func (w *Writer) Fill(role string) (RoleFill, bool) {
	w.mu.Lock()
	k, ok := w.known[role]
	w.mu.Unlock()
	if !ok || k.doc == nil {
		return RoleFill{}, false
	}
	return RoleFill{Subjects: k.subjects, Size: k.size, Quota: k.quota, At: k.at}, true
}

// Lookup tells, for each role, whether its trust policy grants subject (in
// either form). A role's answer comes from the document of the writer's last
// round when that is younger than fresh (and no Remove of the role is
// pending); otherwise from a round of the role that only reads (group
// committed with the role's other requests; no lock, no write). errs[i] is
// the error of role i's read.
func (w *Writer) Lookup(ctx context.Context, roles []string, subject string, fresh time.Duration) (held []bool, errs []error) {
	held = make([]bool, len(roles))
	errs = make([]error, len(roles))
	ps, err := model.ParseSubject(subject)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("trust: %w", err)
		}
		return held, errs
	}
	subject = ps.String()
	var wg sync.WaitGroup
	for i, role := range roles {
		if h, ok := w.knownHas(role, subject, fresh); ok {
			held[i] = h
			continue
		}
		arn, err := w.check(role)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &request{ctx: ctx, probe: subject}
			if errs[i] = w.submit(ctx, arn, req); errs[i] == nil {
				held[i] = req.held
			}
		}()
	}
	wg.Wait()
	return held, errs
}

// knownHas answers Lookup from the last round's document if it is fresh.
func (w *Writer) knownHas(role, subject string, fresh time.Duration) (held, ok bool) {
	if fresh <= 0 {
		return false, false
	}
	k, why := w.fresh(role, fresh)
	if why != "" {
		return false, false
	}
	return k.doc.Has(subject), true
}

// knownTrust answers Inspect from the last round's document if it is
// younger than fresh and no Remove of the role is pending.
func (w *Writer) knownTrust(role string, fresh time.Duration) (model.RoleTrust, bool) {
	if fresh <= 0 {
		return model.RoleTrust{}, false
	}
	k, why := w.fresh(role, fresh)
	if why != "" || k.quota <= 0 {
		return model.RoleTrust{}, false
	}
	return model.RoleTrust{Role: role, Subjects: k.doc.Subjects(), Size: k.size, Quota: k.quota}, true
}

// DeleteIfEmpty runs a round of role that calls del, under the round's
// lock, when the role's trust policy grants no subject; it reports whether
// del ran and succeeded. Every other request of the role is serialized with
// it as with any round, so no subject can be added between the check and
// the deletion by this process or (with a Locker) another replica.
func (w *Writer) DeleteIfEmpty(ctx context.Context, role string, del func(ctx context.Context) error) (bool, error) {
	arn, err := w.check(role)
	if err != nil {
		return false, err
	}
	req := &request{ctx: ctx, deleteIfEmpty: del}
	if err := w.submit(ctx, arn, req); err != nil {
		return false, err
	}
	return req.deleted, nil
}

// Inspect reads the role's trust policy now (GetRole; no lock, no write) and
// the account's size quota.
func (w *Writer) Inspect(ctx context.Context, role string) (model.RoleTrust, error) {
	arn, err := w.check(role)
	if err != nil {
		return model.RoleTrust{}, err
	}
	quota, err := w.api.TrustPolicySizeQuota(ctx)
	if err != nil {
		return model.RoleTrust{}, fmt.Errorf("trust: reading the trust-policy size quota: %w", err)
	}
	doc, err := w.read(ctx, arn)
	if err != nil {
		return model.RoleTrust{}, err
	}
	return model.RoleTrust{Role: arn.String(), Subjects: doc.Subjects(), Size: doc.Size(), Quota: quota}, nil
}

// ManagedTemplate returns the trust policy a new member of a pool starts
// with: the managed statements of the template's document (those federating
// the writer's OIDC provider) with no subject (the placeholder ""), and no
// other statement.
func (w *Writer) ManagedTemplate(ctx context.Context, templateRole string) (string, error) {
	arn, err := w.check(templateRole)
	if err != nil {
		return "", err
	}
	doc, err := w.read(ctx, arn)
	if err != nil {
		return "", err
	}
	return doc.ManagedOnly(), nil
}
