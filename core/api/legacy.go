package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// legacyRoutes are the routes of the existing service, with its shapes.
func (h *handler) legacyRoutes(r chi.Router) {
	r.Post(brokerapi.PathMap, h.handle(h.mapRoles))
	r.Get(brokerapi.PathMyRoleMappings, h.handle(h.myRoleMappings))
	r.Get(brokerapi.PathRoleMappings, h.handle(h.roleMappings))
	r.Post(brokerapi.PathUpdateMapping, h.handle(h.updateRoleMapping))
	r.Post(brokerapi.PathUpdateMultirole, h.handle(h.updateMultiroleMapping))
	r.Delete(brokerapi.PathDeleteMapping, h.handle(h.deleteRoleMapping))
	r.Post(brokerapi.PathServiceAccount, h.handle(h.serviceAccount(true)))
	r.Delete(brokerapi.PathServiceAccount, h.handle(h.serviceAccount(false)))
}

// mapRequest is the body of POST /map_iam_roles_to_pod_sa and /v2/map.
type mapRequest struct {
	RunID        *string `json:"run_id"`
	WorkloadType *string `json:"irsa_workload_type"`
}

// mapResponse is the JSON answer of a map or preview.
type mapResponse struct {
	Config     string              `json:"config"`
	Grants     []model.Grant       `json:"grants"`
	Profiles   []awsconfig.Profile `json:"profiles"`
	Subject    string              `json:"subject"`
	Workload   model.Workload      `json:"workload"`
	DecisionID string              `json:"decision_id"`
	DryRun     bool                `json:"dry_run"`
}

func (h *handler) doMap(w http.ResponseWriter, r *http.Request, dryRun, textByDefault bool) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	var body mapRequest
	if err := decodeJSON(r, &body, !textByDefault); err != nil {
		return err
	}
	if body.RunID == nil {
		return badRequest("missing_field", "run_id is required")
	}
	wt := ""
	if body.WorkloadType != nil {
		wt = *body.WorkloadType
	}
	res, err := h.svc.Map(r.Context(), broker.MapRequest{
		Caller: id, RunID: *body.RunID, WorkloadType: wt, DryRun: dryRun,
		PodToken: r.Header.Get(brokerapi.HeaderPodToken), RequestID: RequestID(r.Context()),
	})
	if err != nil {
		return err
	}
	if textByDefault && !wantsJSON(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, res.Config.Text)
		return nil
	}
	out := mapResponse{Config: res.Config.Text, Grants: res.Grants, Profiles: res.Config.Profiles, Subject: res.Subject, Workload: res.Workload, DecisionID: res.DecisionID, DryRun: dryRun}
	if out.Grants == nil {
		out.Grants = []model.Grant{}
	}
	if out.Profiles == nil {
		out.Profiles = []awsconfig.Profile{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) mapRoles(w http.ResponseWriter, r *http.Request) error {
	return h.doMap(w, r, false, true)
}

// legacyGrouped shows grants the way the legacy GETs show mappings: one object
// per org, or a list for orgs with several pairs or written as multi-role.
func legacyGrouped(grants []model.Grant, snap model.Snapshot) map[string]any {
	byOrg := map[string][]model.RolePair{}
	for _, g := range grants {
		byOrg[g.Org] = append(byOrg[g.Org], g.RolePair)
	}
	out := make(map[string]any, len(byOrg))
	for org, pairs := range byOrg {
		out[org] = legacyShape(model.Mapping{Org: org, Pairs: pairs, Multi: len(pairs) > 1 || snap.Mappings[org].Multi})
	}
	return out
}

func (h *handler) myRoleMappings(w http.ResponseWriter, r *http.Request) error {
	shape, err := h.legacyGetShape(r)
	if err != nil {
		return err
	}
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	dec, snap, err := h.svc.MyGrants(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		return err
	}
	if shape == LegacyShapeV18 {
		items := make([]v18Item, 0, len(dec.Grants))
		for _, g := range dec.Grants {
			items = append(items, v18Item{DominoOrg: g.Org, RolePair: g.RolePair})
		}
		writeJSON(w, http.StatusOK, map[string]any{"my_role_mappings": items})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"my_role_mappings": legacyGrouped(dec.Grants, snap)})
	return nil
}

func (h *handler) roleMappings(w http.ResponseWriter, r *http.Request) error {
	shape, err := h.legacyGetShape(r)
	if err != nil {
		return err
	}
	snap, err := h.adminSnapshot(r)
	if err != nil {
		return err
	}
	all := make(map[string]any, len(snap.Mappings))
	for org, m := range snap.Mappings {
		if shape == LegacyShapeV18 {
			items := make([]v18Item, 0, len(m.Pairs))
			for _, p := range m.Pairs {
				items = append(items, v18Item{DominoOrg: org, RolePair: p})
			}
			all[org] = items
			continue
		}
		all[org] = legacyShape(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"all_role_mappings": all})
	return nil
}

// The shapes of the legacy GETs (/role_mappings, /my_role_mappings).
const (
	// LegacyShapeSeed: an org's mapping is one object, or a list for
	// multi-role orgs; my_role_mappings is an object keyed by org.
	LegacyShapeSeed = "seed"
	// LegacyShapeV18: every org's mapping is a list, and my_role_mappings is
	// a list; every item carries its domino_org (what v1.8's clients read).
	LegacyShapeV18 = "v1.8"
)

// v18Item is a role pair in the v1.8 shapes.
type v18Item struct {
	DominoOrg string `json:"domino_org"`
	model.RolePair
}

// legacyGetShape is the shape a legacy GET answers in: ?shape= when the
// caller names one (irsactl asks for seed, whatever the site's default),
// else the broker's --legacy-get-shape.
func (h *handler) legacyGetShape(r *http.Request) (string, error) {
	shape := r.URL.Query().Get("shape")
	if shape == "" {
		shape = h.o.LegacyGetShape
	}
	switch shape {
	case "", LegacyShapeSeed:
		return LegacyShapeSeed, nil
	case LegacyShapeV18:
		return LegacyShapeV18, nil
	}
	return "", badRequest("invalid_parameter", "shape must be seed or v1.8")
}

// adminSnapshot authenticates the caller and reads every mapping (admin).
func (h *handler) adminSnapshot(r *http.Request) (model.Snapshot, error) {
	id, err := h.caller(r)
	if err != nil {
		return model.Snapshot{}, err
	}
	return h.svc.Mappings(r.Context(), id, RequestID(r.Context()))
}

// orgRequest authenticates the caller and reads a legacy JSON object body
// with its required domino_org; the other fields are returned as they came.
func (h *handler) orgRequest(r *http.Request) (sdk.Identity, string, map[string]json.RawMessage, error) {
	id, err := h.caller(r)
	if err != nil {
		return sdk.Identity{}, "", nil, err
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(r, &raw, false); err != nil {
		return sdk.Identity{}, "", nil, err
	}
	v, ok := raw["domino_org"]
	if !ok {
		return sdk.Identity{}, "", nil, badRequest("missing_field", "domino_org is required")
	}
	var org string
	if err := json.Unmarshal(v, &org); err != nil {
		return sdk.Identity{}, "", nil, badRequest("invalid_field", `field "domino_org" must be a string`)
	}
	if strings.TrimSpace(org) == "" {
		return sdk.Identity{}, "", nil, badRequest("missing_field", "domino_org is required")
	}
	delete(raw, "domino_org")
	return id, org, raw, nil
}

// putLegacy stores m and answers with the legacy write result.
func (h *handler) putLegacy(w http.ResponseWriter, r *http.Request, id sdk.Identity, m model.Mapping) error {
	if err := h.svc.PutMapping(r.Context(), id, m, RequestID(r.Context())); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domino_org": m.Org, "role_mapping": legacyShape(m)})
	return nil
}

func (h *handler) updateRoleMapping(w http.ResponseWriter, r *http.Request) error {
	id, org, raw, err := h.orgRequest(r)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(raw)
	pair, err := model.DecodePair(b)
	if err != nil {
		return err
	}
	return h.putLegacy(w, r, id, model.Mapping{Org: org, Pairs: []model.RolePair{pair}})
}

func (h *handler) updateMultiroleMapping(w http.ResponseWriter, r *http.Request) error {
	id, org, raw, err := h.orgRequest(r)
	if err != nil {
		return err
	}
	rd, ok := raw["role_data"]
	if !ok {
		return badRequest("missing_field", "role_data is required")
	}
	pairs, err := decodePairs(rd, "role_data")
	if err != nil {
		return err
	}
	return h.putLegacy(w, r, id, model.Mapping{Org: org, Pairs: pairs, Multi: true})
}

// decodePairs reads a JSON list of role pairs with the legacy flag rules.
func decodePairs(raw json.RawMessage, field string) ([]model.RolePair, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("invalid_field", fmt.Sprintf("field %q must be a list of role pairs", field))
	}
	pairs := make([]model.RolePair, 0, len(items))
	for _, it := range items {
		pair, err := model.DecodePair(it)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, pair)
	}
	return pairs, nil
}

func (h *handler) deleteRoleMapping(w http.ResponseWriter, r *http.Request) error {
	id, org, _, err := h.orgRequest(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteMapping(r.Context(), id, org, RequestID(r.Context())); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domino_org": org, "deleted": true})
	return nil
}

func (h *handler) serviceAccount(create bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := h.caller(r)
		if err != nil {
			return err
		}
		var body struct {
			Name *string `json:"service_account_name"`
		}
		if err := decodeJSON(r, &body, false); err != nil {
			return err
		}
		if body.Name == nil {
			return badRequest("missing_field", "service_account_name is required")
		}
		if create {
			err = h.svc.CreateServiceAccount(r.Context(), id, *body.Name, RequestID(r.Context()))
		} else {
			err = h.svc.DeleteServiceAccount(r.Context(), id, *body.Name, RequestID(r.Context()))
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"service_account_name": *body.Name, "created": create, "deleted": !create})
		return nil
	}
}

// sortedOrgs returns the orgs of snap in order.
func sortedOrgs(snap model.Snapshot) []string {
	orgs := make([]string, 0, len(snap.Mappings))
	for o := range snap.Mappings {
		orgs = append(orgs, o)
	}
	sort.Strings(orgs)
	return orgs
}

// legacyShape is how the legacy GETs show a mapping: one object for a
// single-pair mapping that is not Multi, else a list of objects.
func legacyShape(m model.Mapping) any {
	if !m.Multi && len(m.Pairs) == 1 {
		return m.Pairs[0]
	}
	return append([]model.RolePair{}, m.Pairs...)
}
