package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

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
	r.Patch(brokerapi.PathV2Mappings, h.handle(h.patchMappings))
	r.Get(brokerapi.PathV2Mappings+"/{org}", h.handle(h.getMapping))
	r.Put(brokerapi.PathV2Mappings+"/{org}", h.handle(h.putMapping))
	r.Delete(brokerapi.PathV2Mappings+"/{org}", h.handle(h.deleteMapping))
	r.Get(brokerapi.PathV2Trust, h.handle(h.trust))
}

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
	w.Header().Set("ETag", etag(snap.Revision))
	writeJSON(w, http.StatusOK, map[string]any{"mappings": out, "revision": snap.Revision})
	return nil
}

// etag is a revision as a strong entity tag.
func etag(rev string) string { return `"` + rev + `"` }

// ifMatch is the revision an If-Match header names: one entity tag, quoted
// or not ("" when absent or "*": no precondition). A weak tag or a list is
// refused: a batch needs one exact revision.
func ifMatch(r *http.Request) (string, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	switch {
	case v == "" || v == "*":
		return "", nil
	case strings.HasPrefix(v, "W/") || strings.Contains(v, ","):
		return "", badRequest("invalid_header", "If-Match must name one revision, as GET /v2/mappings answers it (ETag or revision)")
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || strings.ContainsAny(v, `"`) {
		return "", badRequest("invalid_header", "If-Match must name one revision, as GET /v2/mappings answers it (ETag or revision)")
	}
	return v, nil
}

// batchRequest is the body of PATCH /v2/mappings.
type batchRequest struct {
	Put    []batchPut `json:"put"`
	Delete []string   `json:"delete"`
}

// batchPut is one mapping to write: /v2's Mapping, with multi (a single
// pair kept in the legacy list shape, as irsactl's export marks it).
type batchPut struct {
	Org       string          `json:"org"`
	RolePairs json.RawMessage `json:"role_pairs"`
	Multi     bool            `json:"multi"`
}

// patchMappings writes several orgs' mappings and deletions in one step:
// all of them or, when one is refused, none (docs/openapi.yaml).
func (h *handler) patchMappings(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	rev, err := ifMatch(r)
	if err != nil {
		return err
	}
	var body batchRequest
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	b, err := body.batch()
	if err != nil {
		return err
	}
	b.IfRevision = rev
	newRev, err := h.svc.ApplyMappings(r.Context(), id, b, RequestID(r.Context()))
	if err != nil {
		return err
	}
	put := make([]string, 0, len(b.Put))
	for _, m := range b.Put {
		put = append(put, m.Org)
	}
	deleted := append([]string{}, b.Delete...)
	sort.Strings(put)
	sort.Strings(deleted)
	w.Header().Set("ETag", etag(newRev))
	writeJSON(w, http.StatusOK, map[string]any{"revision": newRev, "put": put, "deleted": deleted})
	return nil
}

// batch decodes the request's mappings; an error names the org.
func (br batchRequest) batch() (model.Batch, error) {
	if len(br.Put) == 0 && len(br.Delete) == 0 {
		return model.Batch{}, badRequest("missing_field", "put or delete is required (a list of mappings, a list of orgs)")
	}
	b := model.Batch{Delete: br.Delete}
	for i, p := range br.Put {
		if p.Org == "" {
			return model.Batch{}, badRequest("missing_field", fmt.Sprintf("put[%d]: org is required", i))
		}
		if p.RolePairs == nil {
			return model.Batch{}, badRequest("missing_field", fmt.Sprintf("org %q: role_pairs is required", clip(p.Org)))
		}
		pairs, err := decodePairs(p.RolePairs, "role_pairs")
		if err != nil {
			prefix := fmt.Sprintf("org %q", clip(p.Org))
			if re, ok := err.(*requestError); ok {
				return model.Batch{}, &requestError{status: re.status, code: re.code, message: prefix + ": " + re.message}
			}
			return model.Batch{}, model.Prefix(prefix, err)
		}
		b.Put = append(b.Put, model.Mapping{Org: p.Org, Pairs: pairs, Multi: p.Multi || len(pairs) != 1})
	}
	return b, nil
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
