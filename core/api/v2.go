package api

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/policy"
)

// v2Routes are the clean API: every collection is a list, every mapping has a
// list of role pairs (docs/openapi.yaml).
func (h *handler) v2Routes(r chi.Router) {
	r.Get("/whoami", h.whoami)
	r.Get("/grants", h.myGrants)
	r.Post("/map", func(w http.ResponseWriter, r *http.Request) { h.doMap(w, r, false, false) })
	r.Post("/preview", func(w http.ResponseWriter, r *http.Request) { h.doMap(w, r, true, false) })
	r.Get("/mappings", h.listMappings)
	r.Get("/mappings/{org}", h.getMapping)
	r.Put("/mappings/{org}", h.putMapping)
	r.Delete("/mappings/{org}", h.deleteMapping)
}

// MappingV2 is a mapping in the /v2 schema.
type MappingV2 struct {
	Org       string             `json:"org"`
	RolePairs []mapping.RolePair `json:"role_pairs"`
}

func toV2(m mapping.Mapping) MappingV2 {
	pairs := m.Pairs
	if pairs == nil {
		pairs = []mapping.RolePair{}
	}
	return MappingV2{Org: m.Org, RolePairs: pairs}
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	orgs := id.Organizations
	if orgs == nil {
		orgs = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id.ID, "username": id.Username, "organizations": orgs, "admin": id.Admin})
}

func (h *handler) myGrants(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dec, _, err := h.svc.MyGrants(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	grants := dec.Grants
	if grants == nil {
		grants = []policy.Grant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": grants, "decision_id": dec.ID})
}

func (h *handler) listMappings(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	snap, err := h.svc.Mappings(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]MappingV2, 0, len(snap.Mappings))
	for _, org := range sortedOrgs(snap) {
		out = append(out, toV2(snap.Mappings[org]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"mappings": out, "revision": snap.Revision})
}

func (h *handler) getMapping(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	snap, err := h.svc.Mappings(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	org := chi.URLParam(r, "org")
	m, ok := snap.Mappings[org]
	if !ok {
		h.fail(w, r, &requestError{status: http.StatusNotFound, code: "mapping_not_found", message: "no mapping for org " + org})
		return
	}
	writeJSON(w, http.StatusOK, toV2(m))
}

func (h *handler) putMapping(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body struct {
		RolePairs *[]json.RawMessage `json:"role_pairs"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.RolePairs == nil {
		h.fail(w, r, badRequest("missing_field", "role_pairs is required"))
		return
	}
	m := mapping.Mapping{Org: chi.URLParam(r, "org"), Multi: len(*body.RolePairs) != 1}
	for _, raw := range *body.RolePairs {
		pair, err := mapping.DecodePair(raw)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		m.Pairs = append(m.Pairs, pair)
	}
	if err := h.svc.PutMapping(r.Context(), id, m, RequestID(r.Context())); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toV2(m))
}

func (h *handler) deleteMapping(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.svc.DeleteMapping(r.Context(), id, chi.URLParam(r, "org"), RequestID(r.Context())); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
