package policy

import (
	"encoding/json"
	"io"
	"maps"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Decision-log paths: the queries as OPA's decision log names them.
const (
	GrantsPath = "irsa/grants/grants"
	AllowPath  = "irsa/authz/allow"
)

// DecisionEvent is one policy decision in the shape of OPA's decision log
// (EventV1 of OPA's logs plugin), so that tools that read OPA's decision
// logs read the broker's. Fields OPA has and the broker has no use for
// (batch ids, traces, intermediate results) are left out.
//
// Input never holds a credential: policy input carries none by type, and
// identity attributes or pod labels whose name or value looks like one
// (Scrub) are removed and listed in Erased, as OPA lists masked fields.
type DecisionEvent struct {
	Labels     map[string]string `json:"labels"`
	DecisionID string            `json:"decision_id"`
	// Revision is the policy revision (OPA's deprecated top-level field,
	// still read by older tools); Bundles carries it as the "policy" bundle
	// and the mapping revision as the "mappings" bundle (data.mappings).
	Revision string                `json:"revision,omitempty"`
	Bundles  map[string]BundleInfo `json:"bundles,omitempty"`
	Path     string                `json:"path"`
	Input    *Input                `json:"input,omitempty"`
	// Result is the decision: the grants (a list, possibly empty) or the
	// allow boolean. Absent when the evaluation failed (Error).
	Result    any            `json:"result,omitempty"`
	Erased    []string       `json:"erased,omitempty"`
	Error     *DecisionError `json:"error,omitempty"`
	Timestamp time.Time      `json:"timestamp"`
	Metrics   map[string]any `json:"metrics,omitempty"`
}

// BundleInfo is the revision of one source of a decision.
type BundleInfo struct {
	Revision string `json:"revision,omitempty"`
}

// DecisionError is a failed evaluation's error, as OPA logs one.
type DecisionError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// MappingRevision is the revision of data.mappings the decision saw ("" for
// authz decisions, which see no mappings).
func (ev *DecisionEvent) MappingRevision() string { return ev.Bundles["mappings"].Revision }

// DecisionSink receives every decision. Sinks must be safe for concurrent
// use and must not modify the event, which several sinks share.
type DecisionSink interface {
	LogDecision(ev *DecisionEvent)
}

// secretName matches attribute and label names whose values are credentials.
var secretName = regexp.MustCompile(`(?i)(token|secret|passw|api[_-]?key|credential|cookie|authori[sz]ation|private|session)`)

// looksLikeJWT: three base64url parts, the first a JSON header ("eyJ").
var looksLikeJWT = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$`)

// Scrub returns in without anything that may be a credential: identity
// attributes and workload labels whose name says so (token, secret, api_key,
// password, ...) or whose value is a JWT. erased lists what was removed as
// JSON pointers (/input/identity/attributes/id_token). The maps of in are
// not modified; the result shares them when nothing is removed.
func Scrub(in Input) (out Input, erased []string) {
	out = in
	out.Identity.Attributes, erased = scrubMap(in.Identity.Attributes, "/input/identity/attributes/", erased)
	out.Workload.Labels, erased = scrubMap(in.Workload.Labels, "/input/workload/labels/", erased)
	return out, erased
}

func scrubMap(m map[string]string, prefix string, erased []string) (map[string]string, []string) {
	var out map[string]string
	for k, v := range m {
		if !secretName.MatchString(k) && !looksLikeJWT.MatchString(strings.TrimSpace(v)) {
			continue
		}
		if out == nil {
			out = maps.Clone(m)
		}
		delete(out, k)
		erased = append(erased, prefix+pointerEscape(k))
	}
	if out == nil {
		return m, erased
	}
	return out, erased
}

// pointerEscape escapes a JSON-pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// DecisionWriter writes decisions as JSON lines (one event per line, the
// format of OPA's console decision logger) to w: a file or standard output.
type DecisionWriter struct {
	mu       sync.Mutex
	w        io.Writer
	log      hclog.Logger
	failures atomic.Int64
}

var _ DecisionSink = (*DecisionWriter)(nil)

// NewDecisionWriter writes to w; write errors are logged to log (the first,
// then every 1000th) and counted.
func NewDecisionWriter(w io.Writer, log hclog.Logger) *DecisionWriter {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &DecisionWriter{w: w, log: log}
}

// LogDecision writes ev as one line. A line is written with one Write call,
// so lines never interleave.
func (d *DecisionWriter) LogDecision(ev *DecisionEvent) {
	b, err := json.Marshal(ev)
	if err == nil {
		b = append(b, '\n')
		d.mu.Lock()
		_, err = d.w.Write(b)
		d.mu.Unlock()
	}
	if err != nil {
		if n := d.failures.Add(1); n%1000 == 1 {
			d.log.Error("decision log write failed", "error", err, "failures", n)
		}
	}
}

// Failures is the number of decisions that could not be written.
func (d *DecisionWriter) Failures() int64 { return d.failures.Load() }

// DecisionRing keeps the most recent decisions in memory for
// GET /v2/decisions. It is safe for concurrent use.
type DecisionRing struct {
	mu   sync.RWMutex
	buf  []*DecisionEvent
	next int // where the next event goes
	n    int // events held (≤ len(buf))
}

var _ DecisionSink = (*DecisionRing)(nil)

// NewDecisionRing keeps the last size decisions (size ≥ 1).
func NewDecisionRing(size int) *DecisionRing {
	return &DecisionRing{buf: make([]*DecisionEvent, max(size, 1))}
}

// Cap is how many decisions the ring keeps.
func (r *DecisionRing) Cap() int { return len(r.buf) }

// LogDecision keeps ev, dropping the oldest decision when full.
func (r *DecisionRing) LogDecision(ev *DecisionEvent) {
	r.mu.Lock()
	r.buf[r.next] = ev
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
	r.mu.Unlock()
}

// DecisionQuery selects decisions of the ring. Zero fields select all.
type DecisionQuery struct {
	// User matches input.identity.username or input.identity.id exactly.
	User string
	// Since keeps decisions at or after this time.
	Since time.Time
	// Path is GrantsPath or AllowPath.
	Path string
	// Limit keeps the most recent Limit matches (0: all).
	Limit int
}

func (q DecisionQuery) match(ev *DecisionEvent) bool {
	if q.Path != "" && ev.Path != q.Path {
		return false
	}
	if !q.Since.IsZero() && ev.Timestamp.Before(q.Since) {
		return false
	}
	if q.User != "" && (ev.Input == nil || (ev.Input.Identity.Username != q.User && ev.Input.Identity.ID != q.User)) {
		return false
	}
	return true
}

// Query returns the matching decisions, oldest first: the most recent
// q.Limit of them when Limit is set.
func (r *DecisionRing) Query(q DecisionQuery) []*DecisionEvent {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*DecisionEvent
	// Walk newest to oldest so that Limit keeps the most recent.
	for i := 1; i <= r.n; i++ {
		ev := r.buf[(r.next-i+len(r.buf))%len(r.buf)]
		if !q.match(ev) {
			continue
		}
		out = append(out, ev)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Get returns the decision with this id, if the ring still holds it.
func (r *DecisionRing) Get(id string) (*DecisionEvent, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := 0; i < r.n; i++ {
		if ev := r.buf[i]; ev != nil && ev.DecisionID == id {
			return ev, true
		}
	}
	return nil, false
}
