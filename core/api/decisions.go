package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// The decisions endpoint (brokerapi.PathV2Decisions). Its authz action lives
// here rather than with the other actions in core/broker, because the use
// cases do not read decisions; policies name it, clients do not, so it is
// not part of the wire contract.
const (
	// ActionDecisionRead is the authz action of GET /v2/decisions: the
	// decisions show other users' identities and grants.
	ActionDecisionRead = "decision.read"
	// DefaultDecisionLimit is how many decisions a query answers by default.
	DefaultDecisionLimit = 100
)

// Decisions is the in-memory ring of recent decisions (*policy.DecisionRing).
type Decisions interface {
	Query(q policy.DecisionQuery) []*policy.DecisionEvent
	Get(id string) (*policy.DecisionEvent, bool)
	Cap() int
}

// DecisionList is the answer of GET /v2/decisions.
type DecisionList struct {
	Decisions []*policy.DecisionEvent `json:"decisions"`
	// Capacity is how many decisions the broker keeps (the oldest go first).
	Capacity int `json:"capacity"`
}

func (h *handler) decisionRoutes(r chi.Router) {
	r.Get(brokerapi.PathV2Decisions, h.handle(h.listDecisions))
	r.Get(brokerapi.PathV2Decisions+"/{id}", h.handle(h.getDecision))
}

// authorizeDecisions authenticates an admin allowed decision.read; it
// answers 404 when the broker keeps no decisions.
func (h *handler) authorizeDecisions(r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.svc.Authorize(r.Context(), id, ActionDecisionRead, RequestID(r.Context())); err != nil {
		return err
	}
	if h.o.Decisions == nil {
		return &requestError{status: http.StatusNotFound, code: "decisions_off", message: "this broker keeps no decisions (--decision-ring=0)"}
	}
	return nil
}

func (h *handler) listDecisions(w http.ResponseWriter, r *http.Request) error {
	if err := h.authorizeDecisions(r); err != nil {
		return err
	}
	q, err := parseDecisionQuery(r.URL.Query(), time.Now(), h.o.Decisions.Cap())
	if err != nil {
		return err
	}
	evs := h.o.Decisions.Query(q)
	if evs == nil {
		evs = []*policy.DecisionEvent{}
	}
	writeJSON(w, http.StatusOK, DecisionList{Decisions: evs, Capacity: h.o.Decisions.Cap()})
	return nil
}

func (h *handler) getDecision(w http.ResponseWriter, r *http.Request) error {
	if err := h.authorizeDecisions(r); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	ev, ok := h.o.Decisions.Get(id)
	if !ok {
		return &requestError{status: http.StatusNotFound, code: "decision_not_found",
			message: "no decision " + clip(id) + " among the last " + strconv.Itoa(h.o.Decisions.Cap())}
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

// parseDecisionQuery reads user, since (RFC 3339, or a duration back from
// now such as 15m), path (grants, allow, or OPA's path) and limit
// (1..capacity, default DefaultDecisionLimit). Unknown parameters are
// refused, so that a typo does not silently widen the answer.
func parseDecisionQuery(v url.Values, now time.Time, capacity int) (policy.DecisionQuery, error) {
	var q policy.DecisionQuery
	for k, vals := range v {
		if len(vals) != 1 {
			return q, badRequest("invalid_parameter", "parameter "+strconv.Quote(clip(k))+" must be given once")
		}
		val := vals[0]
		switch k {
		case "user":
			q.User = val
		case "since":
			t, err := parseSince(val, now)
			if err != nil {
				return q, err
			}
			q.Since = t
		case "path":
			switch val {
			case "grants", policy.GrantsPath:
				q.Path = policy.GrantsPath
			case "allow", policy.AllowPath:
				q.Path = policy.AllowPath
			default:
				return q, badRequest("invalid_parameter", "path must be grants or allow")
			}
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return q, badRequest("invalid_parameter", "limit must be a positive integer")
			}
			q.Limit = n
		default:
			return q, badRequest("invalid_parameter", "unknown parameter "+strconv.Quote(clip(k))+" (user, since, path, limit)")
		}
	}
	if q.Limit == 0 {
		q.Limit = DefaultDecisionLimit
	}
	q.Limit = min(q.Limit, max(capacity, 1))
	return q, nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return time.Time{}, badRequest("invalid_parameter", "since must be an RFC 3339 time (2026-12-01T10:00:00Z) or a duration back from now (15m, 2h)")
	}
	return now.Add(-d), nil
}
