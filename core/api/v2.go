package api

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// v2Routes are the clean API: every collection is a list, every mapping has a
// list of role pairs (docs/openapi.yaml).
func (h *handler) v2Routes(r chi.Router) {
	r.Get(brokerapi.PathV2WhoAmI, h.handle(h.whoami))
	r.Get(brokerapi.PathV2Status, h.handle(h.status))
	r.Get(brokerapi.PathV2Grants, h.handle(h.myGrants))
	r.Post(brokerapi.PathV2Map, h.handle(func(w http.ResponseWriter, r *http.Request) error { return h.doMap(w, r, false, false) }))
	r.Post(brokerapi.PathV2Preview, h.handle(func(w http.ResponseWriter, r *http.Request) error { return h.doMap(w, r, true, false) }))
	r.Get(brokerapi.PathV2Mappings, h.handle(h.listMappings))
	r.Get(brokerapi.PathV2Mappings+"/{org}", h.handle(h.getMapping))
	r.Put(brokerapi.PathV2Mappings+"/{org}", h.handle(h.putMapping))
	r.Delete(brokerapi.PathV2Mappings+"/{org}", h.handle(h.deleteMapping))
	r.Get(PathV2Trust, h.handle(h.trust))
}

// PathV2Trust lists the proxy-role pools, their members and subjects (admin).
const PathV2Trust = brokerapi.PathV2 + "/trust"

func (h *handler) trust(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	st, err := h.svc.Trust(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// MappingV2 is a mapping in the /v2 schema.
type MappingV2 struct {
	Org       string           `json:"org"`
	RolePairs []model.RolePair `json:"role_pairs"`
}

func toV2(m model.Mapping) MappingV2 {
	pairs := m.Pairs
	if pairs == nil {
		pairs = []model.RolePair{}
	}
	return MappingV2{Org: m.Org, RolePairs: pairs}
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	orgs := id.Organizations
	if orgs == nil {
		orgs = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id.ID, "username": id.Username, "organizations": orgs, "admin": id.Admin})
	return nil
}

func (h *handler) myGrants(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	dec, _, err := h.svc.MyGrants(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		return err
	}
	grants := dec.Grants
	if grants == nil {
		grants = []model.Grant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": grants, "decision_id": dec.ID})
	return nil
}

func (h *handler) listMappings(w http.ResponseWriter, r *http.Request) error {
	snap, err := h.adminSnapshot(r)
	if err != nil {
		return err
	}
	out := make([]MappingV2, 0, len(snap.Mappings))
	for _, org := range sortedOrgs(snap) {
		out = append(out, toV2(snap.Mappings[org]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"mappings": out, "revision": snap.Revision})
	return nil
}

func (h *handler) getMapping(w http.ResponseWriter, r *http.Request) error {
	snap, err := h.adminSnapshot(r)
	if err != nil {
		return err
	}
	org := chi.URLParam(r, "org")
	m, ok := snap.Mappings[org]
	if !ok {
		return &requestError{status: http.StatusNotFound, code: "mapping_not_found", message: "no mapping for org " + org}
	}
	writeJSON(w, http.StatusOK, toV2(m))
	return nil
}

func (h *handler) putMapping(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	var body struct {
		RolePairs json.RawMessage `json:"role_pairs"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	if body.RolePairs == nil {
		return badRequest("missing_field", "role_pairs is required")
	}
	pairs, err := decodePairs(body.RolePairs, "role_pairs")
	if err != nil {
		return err
	}
	m := model.Mapping{Org: chi.URLParam(r, "org"), Pairs: pairs, Multi: len(pairs) != 1}
	if err := h.svc.PutMapping(r.Context(), id, m, RequestID(r.Context())); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toV2(m))
	return nil
}

func (h *handler) deleteMapping(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteMapping(r.Context(), id, chi.URLParam(r, "org"), RequestID(r.Context())); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
