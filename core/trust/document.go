package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/model"
)

// ActionAssumeRoleWithWebIdentity is the action managed statements allow.
const ActionAssumeRoleWithWebIdentity = "sts:AssumeRoleWithWebIdentity"

// placeholder is the value a managed sub condition keeps when it has no
// subject left: it matches no token, whereas dropping the condition would
// trust every service account of the cluster.
const placeholder = ""

var (
	// ErrMalformedDocument: the trust policy is not a JSON policy document
	// of the expected shape.
	ErrMalformedDocument = errors.New("malformed trust policy")
	// ErrNoManagedStatement: no statement allows
	// sts:AssumeRoleWithWebIdentity to the configured OIDC provider.
	ErrNoManagedStatement = errors.New("no managed statement")
)

// Condition operators whose "<provider>:sub" values the broker edits.
var subOperators = map[string]bool{ // value: matches patterns (*, ?)
	"StringEquals":             false,
	"StringLike":               true,
	"ForAnyValue:StringEquals": false,
	"ForAnyValue:StringLike":   true,
}

// NormalizeProvider turns an issuer URL or provider name into the form used
// in provider ARNs and condition keys: no scheme, no trailing slash
// ("oidc.eks.us-west-2.amazonaws.com/id/ABC", "127.0.0.1:6000/dev/oidc").
func NormalizeProvider(p string) string {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "https://"), "http://")
	return strings.TrimRight(p, "/")
}

// Document is a parsed trust policy. Only the sub values of the managed
// statements are modelled; everything else is kept as compact JSON in its
// original order. A Document is not safe for concurrent mutation.
type Document struct {
	provider string // normalized
	subKey   string // provider + ":sub"
	top      object
	single   bool     // "Statement" was one object rather than a list
	stmts    []object // as parsed; never mutated
	managed  []*managedStmt
	// text memoizes String until the next change.
	text string
}

type managedStmt struct {
	idx   int     // index into stmts
	slots []*slot // condition operators holding the sub key, in document order
}

// slot is one "<operator>": {"<provider>:sub": values} of a managed statement.
type slot struct {
	op, key string // as spelled in the document
	like    bool
	values  []string
	created bool // the document had no such operator block or key
	dirty   bool
}

// Parse parses a trust policy (URL-encoded as GetRole returns it, or plain)
// and finds the statements that federate provider: Effect Allow, a
// Principal.Federated ARN ending in ":oidc-provider/<provider>" and an
// Action including sts:AssumeRoleWithWebIdentity.
func Parse(raw, provider string) (*Document, error) {
	decoded, err := iam.DecodePolicy(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedDocument, err)
	}
	top, err := parseObject([]byte(decoded))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedDocument, err)
	}
	d := &Document{provider: NormalizeProvider(provider), top: top}
	d.subKey = d.provider + ":sub"
	st, ok := top.get("Statement")
	if !ok {
		return nil, fmt.Errorf("%w: no Statement", ErrMalformedDocument)
	}
	switch {
	case bytes.HasPrefix(st, []byte("{")):
		d.single = true
		o, err := parseObject(st)
		if err != nil {
			return nil, fmt.Errorf("%w: statement: %w", ErrMalformedDocument, err)
		}
		d.stmts = []object{o}
	case bytes.HasPrefix(st, []byte("[")):
		var list []json.RawMessage
		if err := json.Unmarshal(st, &list); err != nil {
			return nil, fmt.Errorf("%w: Statement: %w", ErrMalformedDocument, err)
		}
		for i, s := range list {
			o, err := parseObject(s)
			if err != nil {
				return nil, fmt.Errorf("%w: statement %d: %w", ErrMalformedDocument, i, err)
			}
			d.stmts = append(d.stmts, o)
		}
	default:
		return nil, fmt.Errorf("%w: Statement must be an object or a list", ErrMalformedDocument)
	}
	for i, s := range d.stmts {
		if !d.isManaged(s) {
			continue
		}
		m := &managedStmt{idx: i}
		if m.slots, err = d.subSlots(s); err != nil {
			return nil, fmt.Errorf("%w: statement %d: %w", ErrMalformedDocument, i, err)
		}
		d.managed = append(d.managed, m)
	}
	return d, nil
}

func (d *Document) isManaged(s object) bool {
	if eff, ok := s.get("Effect"); !ok || string(eff) != `"Allow"` {
		return false
	}
	pr, ok := s.get("Principal")
	if !ok || !bytes.HasPrefix(pr, []byte("{")) {
		return false
	}
	po, err := parseObject(pr)
	if err != nil {
		return false
	}
	fed, ok := po.get("Federated")
	if !ok {
		return false
	}
	feds, err := stringOrList(fed)
	if err != nil {
		return false
	}
	suffix := ":oidc-provider/" + d.provider
	found := false
	for _, f := range feds {
		if strings.HasPrefix(f, "arn:") && strings.HasSuffix(f, suffix) {
			found = true
		}
	}
	if !found {
		return false
	}
	act, ok := s.get("Action")
	if !ok {
		return false
	}
	acts, err := stringOrList(act)
	if err != nil {
		return false
	}
	for _, a := range acts {
		if strings.EqualFold(a, ActionAssumeRoleWithWebIdentity) {
			return true
		}
	}
	return false
}

func (d *Document) subSlots(s object) ([]*slot, error) {
	c, ok := s.get("Condition")
	if !ok {
		return nil, nil
	}
	co, err := parseObject(c)
	if err != nil {
		return nil, fmt.Errorf("Condition: %w", err)
	}
	var slots []*slot
	for _, op := range co {
		like, edited := subOperators[op.key]
		if !edited {
			continue
		}
		block, err := parseObject(op.raw)
		if err != nil {
			return nil, fmt.Errorf("Condition %s: %w", op.key, err)
		}
		i := block.index(d.subKey, true)
		if i < 0 {
			continue
		}
		vals, err := stringOrList(block[i].raw)
		if err != nil {
			return nil, fmt.Errorf("Condition %s %s: %w", op.key, block[i].key, err)
		}
		slots = append(slots, &slot{op: op.key, key: block[i].key, like: like, values: vals})
	}
	return slots, nil
}

// Provider is the normalized OIDC provider the document was parsed for.
func (d *Document) Provider() string { return d.provider }

// ManagedStatements is the number of statements the broker edits.
func (d *Document) ManagedStatements() int { return len(d.managed) }

// Subjects lists the sub values of all managed statements in document order,
// without duplicates and without the empty placeholder.
func (d *Document) Subjects() []string {
	seen := map[string]bool{placeholder: true}
	var out []string
	for _, m := range d.managed {
		for _, sl := range m.slots {
			for _, v := range sl.values {
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// Has reports whether a managed statement already grants subject s: the
// same string, or the same service account in the other form, where a
// legacy pattern only counts under a pattern-matching operator.
func (d *Document) Has(s string) bool {
	ps, err := model.ParseSubject(s)
	if err != nil {
		return false
	}
	exact, legacy := ps.Exact(), ps.LegacyForm()
	for _, m := range d.managed {
		for _, sl := range m.slots {
			for _, v := range sl.values {
				if v == exact || (sl.like && v == legacy) {
					return true
				}
			}
		}
	}
	return false
}

// checkAdd validates what Add would do, without changing anything.
func (d *Document) checkAdd(subjects []string) error {
	if len(d.managed) == 0 {
		return ErrNoManagedStatement
	}
	for _, s := range subjects {
		if _, err := model.ParseSubject(s); err != nil {
			return err
		}
		if !strings.ContainsAny(s, "*?") {
			continue
		}
		for _, sl := range d.managed[0].slots {
			if !sl.like {
				return fmt.Errorf("cannot add pattern %q under %s (only StringLike matches patterns)", s, sl.op)
			}
		}
	}
	return nil
}

// Add grants each subject not granted yet, in the first managed statement
// (in every sub condition it has; a new StringLike one when it has none),
// and drops the empty placeholder there. Subjects must be service-account
// subjects (exact or legacy). It reports whether the document changed.
func (d *Document) Add(subjects ...string) (bool, error) {
	if err := d.checkAdd(subjects); err != nil {
		return false, err
	}
	target := d.managed[0]
	changed := false
	for _, s := range subjects {
		if d.Has(s) {
			continue
		}
		if len(target.slots) == 0 {
			target.slots = []*slot{{op: "StringLike", key: d.subKey, like: true, created: true}}
		}
		for _, sl := range target.slots {
			kept := sl.values[:0:0]
			for _, v := range sl.values {
				if v != placeholder {
					kept = append(kept, v)
				}
			}
			sl.values = append(kept, s)
			sl.dirty = true
		}
		changed = true
	}
	if changed {
		d.text = ""
	}
	return changed, nil
}

// Remove revokes each subject from every managed statement: the value
// itself and, for service-account subjects, the other form (exact or
// legacy) of the same service account. A condition left empty keeps the
// placeholder "" rather than disappearing. It reports whether the document
// changed.
func (d *Document) Remove(subjects ...string) (bool, error) {
	if len(d.managed) == 0 {
		return false, ErrNoManagedStatement
	}
	drop := map[string]bool{}
	for _, s := range subjects {
		drop[s] = true
		if ps, err := model.ParseSubject(s); err == nil {
			drop[ps.Exact()] = true
			drop[ps.LegacyForm()] = true
		}
	}
	delete(drop, placeholder)
	changed := false
	for _, m := range d.managed {
		for _, sl := range m.slots {
			kept := sl.values[:0:0]
			for _, v := range sl.values {
				if drop[v] {
					continue
				}
				kept = append(kept, v)
			}
			if len(kept) == len(sl.values) {
				continue
			}
			if len(kept) == 0 {
				kept = []string{placeholder}
			}
			sl.values, sl.dirty, changed = kept, true, true
		}
	}
	if changed {
		d.text = ""
	}
	return changed, nil
}

// Clone returns an independent copy.
func (d *Document) Clone() *Document {
	c := *d
	c.managed = make([]*managedStmt, len(d.managed))
	for i, m := range d.managed {
		cm := &managedStmt{idx: m.idx, slots: make([]*slot, len(m.slots))}
		for j, sl := range m.slots {
			csl := *sl
			csl.values = append([]string(nil), sl.values...)
			cm.slots[j] = &csl
		}
		c.managed[i] = cm
	}
	return &c
}

// String serializes the document: compact JSON (no whitespace outside
// strings), members in their original order, deterministic.
func (d *Document) String() string {
	if d.text == "" {
		d.text = d.serialize()
	}
	return d.text
}

func (d *Document) serialize() string {
	stmts, copied := d.stmts, false
	for _, m := range d.managed {
		if !m.anyDirty() {
			continue
		}
		if !copied {
			stmts, copied = append([]object(nil), d.stmts...), true
		}
		stmts[m.idx] = d.render(d.stmts[m.idx], m)
	}
	var st json.RawMessage
	if d.single {
		st = stmts[0].marshal()
	} else {
		var b bytes.Buffer
		b.WriteByte('[')
		for i, s := range stmts {
			if i > 0 {
				b.WriteByte(',')
			}
			s.appendTo(&b)
		}
		b.WriteByte(']')
		st = b.Bytes()
	}
	return string(d.top.with("Statement", st, false).marshal())
}

func (m *managedStmt) anyDirty() bool {
	for _, sl := range m.slots {
		if sl.dirty {
			return true
		}
	}
	return false
}

// render writes the slots' values back into statement s.
func (d *Document) render(s object, m *managedStmt) object {
	var cond object
	if raw, ok := s.get("Condition"); ok {
		cond, _ = parseObject(raw) // parsed successfully in Parse
	}
	for _, sl := range m.slots {
		if !sl.dirty {
			continue
		}
		var block object
		if raw, ok := cond.get(sl.op); ok {
			block, _ = parseObject(raw)
		}
		block = block.with(sl.key, encodeStrings(sl.values), true)
		cond = cond.with(sl.op, block.marshal(), false)
	}
	return s.with("Condition", cond.marshal(), false)
}

// Size is the document's length as IAM counts it against
// AssumeRolePolicySizeQuota: characters of the JSON without whitespace
// outside strings, which is exactly what String returns.
func (d *Document) Size() int { return utf8.RuneCountInString(d.String()) }

// PolicySize counts any policy document the way IAM does: its characters
// once whitespace outside strings is removed.
func PolicySize(doc string) (int, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(doc)); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformedDocument, err)
	}
	return utf8.RuneCount(b.Bytes()), nil
}

// ManagedOnly renders a policy document holding only the managed statements
// of d, each with its sub conditions emptied to the placeholder "": the
// trust policy a new member of a pool starts with.
func (d *Document) ManagedOnly() string {
	c := d.Clone()
	_, _ = c.Remove(c.Subjects()...) // cannot fail: the caller checked for managed statements
	var b bytes.Buffer
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	for i, m := range c.managed {
		if i > 0 {
			b.WriteByte(',')
		}
		s := c.stmts[m.idx]
		if m.anyDirty() {
			s = c.render(s, m)
		}
		s.appendTo(&b)
	}
	b.WriteString("]}")
	return b.String()
}
