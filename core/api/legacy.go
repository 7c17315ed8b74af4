package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// legacyRoutes are the routes of the existing service, with its shapes.
func (h *handler) legacyRoutes(r chi.Router) {
	r.Post("/map_iam_roles_to_pod_sa", h.handle(h.mapRoles))
	r.Get("/my_role_mappings", h.handle(h.myRoleMappings))
	r.Get("/role_mappings", h.handle(h.roleMappings))
	r.Post("/update_role_mapping", h.handle(h.updateRoleMapping))
	r.Post("/update_multirole_mapping", h.handle(h.updateMultiroleMapping))
	r.Delete("/delete_role_mapping", h.handle(h.deleteRoleMapping))
	r.Post("/service_account", h.handle(h.serviceAccount(true)))
	r.Delete("/service_account", h.handle(h.serviceAccount(false)))
}

// mapRequest is the body of POST /map_iam_roles_to_pod_sa and /v2/map.
type mapRequest struct {
	RunID        *string `json:"run_id"`
	WorkloadType *string `json:"irsa_workload_type"`
}

// mapResponse is the JSON answer of a map or preview.
type mapResponse struct {
	Config     string          `json:"config"`
	Grants     []policy.Grant  `json:"grants"`
	Profiles   []profileJSON   `json:"profiles"`
	Subject    string          `json:"subject"`
	Workload   policy.Workload `json:"workload"`
	DecisionID string          `json:"decision_id"`
	DryRun     bool            `json:"dry_run"`
}

type profileJSON struct {
	Name          string `json:"name"`
	SourceProfile string `json:"source_profile"`
	AssetRoleARN  string `json:"iam_role_arn"`
	ProxyRoleARN  string `json:"proxy_iam_role_arn"`
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
		PodToken: r.Header.Get(HeaderPodToken), RequestID: RequestID(r.Context()),
	})
	if err != nil {
		return err
	}
	if textByDefault && !wantsJSON(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, res.Config.Text)
		return nil
	}
	out := mapResponse{Config: res.Config.Text, Grants: res.Grants, Subject: res.Subject, Workload: res.Workload.Workload, DecisionID: res.DecisionID, DryRun: dryRun}
	if out.Grants == nil {
		out.Grants = []policy.Grant{}
	}
	out.Profiles = make([]profileJSON, 0, len(res.Config.Profiles))
	for _, p := range res.Config.Profiles {
		out.Profiles = append(out.Profiles, profileJSON{Name: p.Name, SourceProfile: p.SourceProfile, AssetRoleARN: p.AssetRoleARN, ProxyRoleARN: p.ProxyRoleARN})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) mapRoles(w http.ResponseWriter, r *http.Request) error {
	return h.doMap(w, r, false, true)
}

// legacyGrouped shows grants the way the legacy GETs show mappings: one object
// per org, or a list for orgs with several pairs or written as multi-role.
func legacyGrouped(grants []policy.Grant, snap mapping.Snapshot) map[string]any {
	byOrg := map[string][]mapping.RolePair{}
	for _, g := range grants {
		byOrg[g.Org] = append(byOrg[g.Org], mapping.RolePair{IAMRoleARN: g.IAMRoleARN, ProxyIAMRoleARN: g.ProxyIAMRoleARN, UpdateTrustPolicy: g.UpdateTrustPolicy})
	}
	out := make(map[string]any, len(byOrg))
	for org, pairs := range byOrg {
		m := mapping.Mapping{Org: org, Pairs: pairs, Multi: len(pairs) > 1 || snap.Mappings[org].Multi}
		out[org] = m.Legacy()
	}
	return out
}

func (h *handler) myRoleMappings(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	dec, snap, err := h.svc.MyGrants(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"my_role_mappings": legacyGrouped(dec.Grants, snap)})
	return nil
}

func (h *handler) roleMappings(w http.ResponseWriter, r *http.Request) error {
	snap, err := h.adminSnapshot(r)
	if err != nil {
		return err
	}
	all := make(map[string]any, len(snap.Mappings))
	for org, m := range snap.Mappings {
		all[org] = m.Legacy()
	}
	writeJSON(w, http.StatusOK, map[string]any{"all_role_mappings": all})
	return nil
}

// adminSnapshot authenticates the caller and reads every mapping (admin).
func (h *handler) adminSnapshot(r *http.Request) (mapping.Snapshot, error) {
	id, err := h.caller(r)
	if err != nil {
		return mapping.Snapshot{}, err
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
func (h *handler) putLegacy(w http.ResponseWriter, r *http.Request, id sdk.Identity, m mapping.Mapping) error {
	if err := h.svc.PutMapping(r.Context(), id, m, RequestID(r.Context())); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domino_org": m.Org, "role_mapping": m.Legacy()})
	return nil
}

func (h *handler) updateRoleMapping(w http.ResponseWriter, r *http.Request) error {
	id, org, raw, err := h.orgRequest(r)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(raw)
	pair, err := mapping.DecodePair(b)
	if err != nil {
		return err
	}
	return h.putLegacy(w, r, id, mapping.Mapping{Org: org, Pairs: []mapping.RolePair{pair}})
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
	return h.putLegacy(w, r, id, mapping.Mapping{Org: org, Pairs: pairs, Multi: true})
}

// decodePairs reads a JSON list of role pairs with the legacy flag rules.
func decodePairs(raw json.RawMessage, field string) ([]mapping.RolePair, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("invalid_field", fmt.Sprintf("field %q must be a list of role pairs", field))
	}
	pairs := make([]mapping.RolePair, 0, len(items))
	for _, it := range items {
		pair, err := mapping.DecodePair(it)
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
func sortedOrgs(snap mapping.Snapshot) []string {
	orgs := make([]string, 0, len(snap.Mappings))
	for o := range snap.Mappings {
		orgs = append(orgs, o)
	}
	sort.Strings(orgs)
	return orgs
}
