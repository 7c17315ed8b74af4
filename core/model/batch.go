package model

import (
	"fmt"
	"slices"
)

// Batch is a set of mapping changes written in one step: every Put and
// Delete, or none of them. IfRevision, when set, is the Snapshot revision the
// changes were computed against; a store refuses the batch (KindPrecondition)
// when its mappings are no longer at that revision.
type Batch struct {
	Put        []Mapping
	Delete     []string
	IfRevision string
}

// Empty reports whether b changes nothing.
func (b Batch) Empty() bool { return len(b.Put) == 0 && len(b.Delete) == 0 }

// Orgs lists the orgs b names, sorted.
func (b Batch) Orgs() []string {
	out := make([]string, 0, len(b.Put)+len(b.Delete))
	for _, m := range b.Put {
		out = append(out, m.Org)
	}
	out = append(out, b.Delete...)
	slices.Sort(out)
	return out
}

// Validate checks every mapping as a single Put does and every deleted org's
// name, and that no org is named twice (in Put, in Delete or across both).
// The error names the org and is classified KindInvalid.
func (b Batch) Validate() error {
	seen := make(map[string]bool, len(b.Put)+len(b.Delete))
	twice := func(org string) error {
		if seen[org] {
			return Invalid("duplicate_org", "org %q appears more than once in the batch", org)
		}
		seen[org] = true
		return nil
	}
	for _, m := range b.Put {
		if err := m.Validate(); err != nil {
			return Prefix(fmt.Sprintf("org %q", m.Org), err)
		}
		if err := twice(m.Org); err != nil {
			return err
		}
	}
	for _, org := range b.Delete {
		if err := ValidateOrg(org); err != nil {
			return Prefix(fmt.Sprintf("delete org %q", org), err)
		}
		if err := twice(org); err != nil {
			return err
		}
	}
	return nil
}

// StaleRevision is the error of a batch whose IfRevision no longer holds;
// have is the revision now ("" when unknown: a concurrent writer won).
func StaleRevision(want, have string) *Error {
	if have == "" {
		return Errorf(KindPrecondition, "revision_mismatch",
			"the mappings changed after revision %s; read them again", want)
	}
	return Errorf(KindPrecondition, "revision_mismatch",
		"the mappings are at revision %s, not %s: they changed since they were read; read them again", have, want)
}
