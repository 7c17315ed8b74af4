package awssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PolicyError reports a policy document that IAM would reject as MalformedPolicyDocument.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

func malformed(format string, a ...any) error { return &PolicyError{Msg: fmt.Sprintf(format, a...)} }

// policyKind selects the validation rules: trust (resource-based, needs Principal, no
// Resource) or identity (inline permission policy: Resource, no Principal).
type policyKind int

const (
	kindTrust policyKind = iota
	kindIdentity
)

// policy is a parsed IAM policy document.
type policy struct {
	Version    string
	Statements []statement
}

// statement is one normalized policy statement; every string-or-list value is a list.
type statement struct {
	Sid          string
	Effect       string // "Allow" or "Deny"
	Principal    *principalSet
	NotPrincipal *principalSet
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Conditions   []condition
}

// principalSet is a Principal element: "*" or a map of type → identifiers.
type principalSet struct {
	Any    bool
	Values map[string][]string // "AWS", "Federated", "Service", "CanonicalUser"
}

// condition is one operator/key/values triple of a Condition block.
type condition struct {
	Op     string // as written, e.g. "ForAnyValue:StringLike"
	Key    string
	Values []string
}

// PolicySize returns the length IAM counts against size quotas: the document's bytes
// without whitespace (space, tab, CR, LF).
func PolicySize(doc string) int {
	n := 0
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
		default:
			n++
		}
	}
	return n
}

// parsePolicy parses and validates a policy document. Errors are *PolicyError.
func parsePolicy(doc string, kind policyKind) (*policy, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, malformed("This policy contains invalid Json")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("This policy contains invalid Json")
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, malformed("This policy contains invalid Json")
	}
	p := &policy{}
	var stmts []any
	haveStatement := false
	for k, v := range top {
		switch k {
		case "Version":
			s, ok := v.(string)
			if !ok || (s != "2012-10-17" && s != "2008-10-17") {
				return nil, malformed("The policy failed legacy parsing")
			}
			p.Version = s
		case "Id":
			if _, ok := v.(string); !ok {
				return nil, malformed("Syntax errors in policy.")
			}
		case "Statement":
			haveStatement = true
			switch sv := v.(type) {
			case []any:
				stmts = sv
			case map[string]any:
				stmts = []any{sv}
			default:
				return nil, malformed("Syntax errors in policy.")
			}
		default:
			return nil, malformed("Syntax errors in policy.")
		}
	}
	if !haveStatement || len(stmts) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	for _, rs := range stmts {
		m, ok := rs.(map[string]any)
		if !ok {
			return nil, malformed("Syntax errors in policy.")
		}
		st, err := parseStatement(m, kind)
		if err != nil {
			return nil, err
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(m map[string]any, kind policyKind) (statement, error) {
	var st statement
	var err error
	for k, v := range m {
		switch k {
		case "Sid":
			s, ok := v.(string)
			if !ok {
				return st, malformed("Syntax errors in policy.")
			}
			st.Sid = s
		case "Effect":
			s, ok := v.(string)
			if !ok || (s != "Allow" && s != "Deny") {
				return st, malformed("Invalid effect: %v", v)
			}
			st.Effect = s
		case "Principal", "NotPrincipal":
			ps, perr := parsePrincipal(v)
			if perr != nil {
				return st, perr
			}
			if k == "Principal" {
				st.Principal = ps
			} else {
				st.NotPrincipal = ps
			}
		case "Action":
			st.Action, err = stringList(v)
		case "NotAction":
			st.NotAction, err = stringList(v)
		case "Resource":
			st.Resource, err = stringList(v)
		case "NotResource":
			st.NotResource, err = stringList(v)
		case "Condition":
			st.Conditions, err = parseConditions(v)
		default:
			return st, malformed("Syntax errors in policy.")
		}
		if err != nil {
			return st, err
		}
	}
	if st.Effect == "" {
		return st, malformed("Missing required field Effect")
	}
	if len(st.Action) == 0 && len(st.NotAction) == 0 {
		return st, malformed("Missing required field Action")
	}
	if st.Action != nil && st.NotAction != nil {
		return st, malformed("Syntax errors in policy.")
	}
	switch kind {
	case kindTrust:
		if st.Principal == nil && st.NotPrincipal == nil {
			return st, malformed("Missing required field Principal")
		}
		if st.Resource != nil || st.NotResource != nil {
			return st, malformed("Has prohibited field Resource")
		}
	case kindIdentity:
		if st.Principal != nil || st.NotPrincipal != nil {
			return st, malformed("Policy document should not specify a principal.")
		}
		if len(st.Resource) == 0 && len(st.NotResource) == 0 {
			return st, malformed("Policy statement must contain resources.")
		}
	}
	return st, nil
}

func parsePrincipal(v any) (*principalSet, error) {
	if s, ok := v.(string); ok {
		if s != "*" {
			return nil, malformed("Invalid principal in policy: %q", s)
		}
		return &principalSet{Any: true}, nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	ps := &principalSet{Values: map[string][]string{}}
	for k, raw := range m {
		switch k {
		case "AWS", "Federated", "Service", "CanonicalUser":
		default:
			return nil, malformed("Invalid principal in policy: %q", k)
		}
		vals, err := stringList(raw)
		if err != nil {
			return nil, err
		}
		if len(vals) == 0 {
			return nil, malformed("Invalid principal in policy: %q", k)
		}
		ps.Values[k] = vals
	}
	return ps, nil
}

// stringList accepts a string or a non-empty list of strings.
func stringList(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case []any:
		if len(t) == 0 {
			return nil, malformed("Syntax errors in policy.")
		}
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, malformed("Syntax errors in policy.")
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, malformed("Syntax errors in policy.")
	}
}

// scalarList accepts condition values: a scalar (string, number, bool) or a list of scalars.
func scalarList(v any) ([]string, error) {
	scalar := func(e any) (string, bool) {
		switch s := e.(type) {
		case string:
			return s, true
		case json.Number:
			return s.String(), true
		case bool:
			return strconv.FormatBool(s), true
		}
		return "", false
	}
	if s, ok := scalar(v); ok {
		return []string{s}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, malformed("Syntax errors in policy.")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := scalar(e)
		if !ok {
			return nil, malformed("Syntax errors in policy.")
		}
		out = append(out, s)
	}
	return out, nil
}

var conditionOps = map[string]bool{
	"stringequals": true, "stringnotequals": true, "stringequalsignorecase": true,
	"stringnotequalsignorecase": true, "stringlike": true, "stringnotlike": true,
	"arnequals": true, "arnnotequals": true, "arnlike": true, "arnnotlike": true,
	"bool": true, "null": true,
	"numericequals": true, "numericnotequals": true, "numericlessthan": true,
	"numericlessthanequals": true, "numericgreaterthan": true, "numericgreaterthanequals": true,
	"dateequals": true, "datenotequals": true, "datelessthan": true,
	"datelessthanequals": true, "dategreaterthan": true, "dategreaterthanequals": true,
	"ipaddress": true, "notipaddress": true,
}

// splitOp returns the set qualifier ("", "foranyvalue", "forallvalues"), the base
// operator in lower case, and whether it carries the IfExists suffix.
func splitOp(op string) (set, base string, ifExists bool) {
	lo := strings.ToLower(op)
	if i := strings.IndexByte(lo, ':'); i >= 0 {
		set, lo = lo[:i], lo[i+1:]
	}
	if strings.HasSuffix(lo, "ifexists") && lo != "null" {
		lo, ifExists = strings.TrimSuffix(lo, "ifexists"), true
	}
	return set, lo, ifExists
}

func parseConditions(v any) ([]condition, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("Syntax errors in policy.")
	}
	var out []condition
	for op, rawKeys := range m {
		set, base, _ := splitOp(op)
		if (set != "" && set != "foranyvalue" && set != "forallvalues") || !conditionOps[base] {
			return nil, malformed("Invalid Condition type : %s.", op)
		}
		keys, ok := rawKeys.(map[string]any)
		if !ok {
			return nil, malformed("Syntax errors in policy.")
		}
		for key, rv := range keys {
			vals, err := scalarList(rv)
			if err != nil {
				return nil, err
			}
			out = append(out, condition{Op: op, Key: key, Values: vals})
		}
	}
	// Deterministic order for evaluation and debugging.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Op != out[j].Op {
			return out[i].Op < out[j].Op
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// decision is the outcome of evaluating one policy.
type decision int

const (
	decisionNone  decision = iota // no statement applies (implicit deny)
	decisionAllow                 // some Allow applies and no Deny
	decisionDeny                  // an explicit Deny applies
)

// evalRequest describes the request a policy is evaluated against.
type evalRequest struct {
	PrincipalType string   // "Federated" or "AWS"; empty for identity policies
	Principals    []string // identifiers the caller matches (ARNs, account ids)
	Action        string   // e.g. "sts:AssumeRole"
	Resource      string   // identity policies only
	Context       map[string][]string
}

// evaluate returns the policy's decision: Deny wins over Allow.
func (p *policy) evaluate(req evalRequest) decision {
	if p == nil {
		return decisionNone
	}
	ctx := make(map[string][]string, len(req.Context))
	for k, v := range req.Context {
		ctx[strings.ToLower(k)] = v
	}
	allowed := false
	for i := range p.Statements {
		st := &p.Statements[i]
		if !st.applies(req, ctx) {
			continue
		}
		if st.Effect == "Deny" {
			return decisionDeny
		}
		allowed = true
	}
	if allowed {
		return decisionAllow
	}
	return decisionNone
}

func (st *statement) applies(req evalRequest, ctx map[string][]string) bool {
	if st.Principal != nil && !st.Principal.matches(req.PrincipalType, req.Principals) {
		return false
	}
	if st.NotPrincipal != nil && st.NotPrincipal.matches(req.PrincipalType, req.Principals) {
		return false
	}
	if st.Action != nil && !anyMatch(st.Action, req.Action, true) {
		return false
	}
	if st.NotAction != nil && anyMatch(st.NotAction, req.Action, true) {
		return false
	}
	if st.Resource != nil && !anyMatch(st.Resource, req.Resource, false) {
		return false
	}
	if st.NotResource != nil && anyMatch(st.NotResource, req.Resource, false) {
		return false
	}
	for _, c := range st.Conditions {
		if !c.holds(ctx) {
			return false
		}
	}
	return true
}

func (ps *principalSet) matches(typ string, ids []string) bool {
	if ps.Any {
		return true
	}
	for _, v := range ps.Values[typ] {
		for _, id := range ids {
			if v == "*" || v == id {
				return true
			}
		}
	}
	return false
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against an IAM pattern where * is any run of characters and
// ? is exactly one character. Linear-time greedy matching with backtracking to the
// last star.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func (c condition) holds(ctx map[string][]string) bool {
	set, base, ifExists := splitOp(c.Op)
	reqVals, present := ctx[strings.ToLower(c.Key)]
	if base == "null" {
		want := len(c.Values) > 0 && strings.EqualFold(c.Values[0], "true")
		return want == !present
	}
	negated := strings.Contains(base, "not")
	if !present || len(reqVals) == 0 {
		switch {
		case ifExists, set == "forallvalues":
			return true
		case set == "foranyvalue":
			return false
		default:
			return negated
		}
	}
	positive := strings.Replace(strings.Replace(base, "notequals", "equals", 1), "notlike", "like", 1)
	if base == "notipaddress" {
		positive = "ipaddress"
	}
	matchOne := func(rv string) bool {
		for _, cv := range c.Values {
			if compareCond(positive, rv, cv) {
				return true
			}
		}
		return false
	}
	switch set {
	case "forallvalues":
		for _, rv := range reqVals {
			if matchOne(rv) == negated {
				return false
			}
		}
		return true
	default: // single-valued and ForAnyValue: some request value satisfies the operator
		for _, rv := range reqVals {
			if matchOne(rv) != negated {
				return true
			}
		}
		return false
	}
}

func compareCond(op, rv, cv string) bool {
	switch op {
	case "stringequals":
		return rv == cv
	case "stringequalsignorecase":
		return strings.EqualFold(rv, cv)
	case "stringlike":
		return wildcardMatch(cv, rv)
	case "arnequals", "arnlike":
		return arnMatch(cv, rv)
	case "bool":
		return strings.EqualFold(rv, cv)
	case "numericequals", "numericlessthan", "numericlessthanequals", "numericgreaterthan", "numericgreaterthanequals":
		a, err1 := strconv.ParseFloat(rv, 64)
		b, err2 := strconv.ParseFloat(cv, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		return cmpOrdered(op[len("numeric"):], a, b)
	case "dateequals", "datelessthan", "datelessthanequals", "dategreaterthan", "dategreaterthanequals":
		a, err1 := parseCondTime(rv)
		b, err2 := parseCondTime(cv)
		if err1 != nil || err2 != nil {
			return false
		}
		return cmpOrdered(op[len("date"):], float64(a.UnixNano()), float64(b.UnixNano()))
	case "ipaddress":
		addr, err1 := netip.ParseAddr(rv)
		pfx, err2 := netip.ParsePrefix(cv)
		if err2 != nil {
			a2, err3 := netip.ParseAddr(cv)
			return err1 == nil && err3 == nil && a2 == addr
		}
		return err1 == nil && pfx.Contains(addr)
	}
	return false
}

// arnMatch is ArnLike (and ArnEquals, which IAM evaluates the same way): pattern and
// value are split into their six colon-separated parts (arn:partition:service:region:
// account:resource, the resource keeping any further colons) and each part is matched
// on its own, case-sensitively, with * and ? wildcards, so a wildcard never spans a
// colon outside the resource. A value that is not an ARN matches nothing.
func arnMatch(pattern, value string) bool {
	pp := strings.SplitN(pattern, ":", 6)
	vp := strings.SplitN(value, ":", 6)
	if len(pp) != 6 || len(vp) != 6 || vp[0] != "arn" {
		return false
	}
	for i := range pp {
		if !wildcardMatch(pp[i], vp[i]) {
			return false
		}
	}
	return true
}

func cmpOrdered(op string, a, b float64) bool {
	switch op {
	case "equals":
		return a == b
	case "lessthan":
		return a < b
	case "lessthanequals":
		return a <= b
	case "greaterthan":
		return a > b
	case "greaterthanequals":
		return a >= b
	}
	return false
}

func parseCondTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("not a date: %w", err)
	}
	return time.Unix(sec, 0), nil
}
