package api

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/policy"
)

// legacyRoutes are the routes of the existing service, with its shapes.
func (h *handler) legacyRoutes(r chi.Router) {
	r.Post("/map_iam_roles_to_pod_sa", h.mapRoles)
	r.Get("/my_role_mappings", h.myRoleMappings)
	r.Get("/role_mappings", h.roleMappings)
	r.Post("/update_role_mapping", h.updateRoleMapping)
	r.Post("/update_multirole_mapping", h.updateMultiroleMapping)
	r.Delete("/delete_role_mapping", h.deleteRoleMapping)
	r.Post("/service_account", h.serviceAccount(true))
	r.Delete("/service_account", h.serviceAccount(false))
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

func (h *handler) doMap(w http.ResponseWriter, r *http.Request, dryRun, textByDefault bool) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body mapRequest
	if err := decodeJSON(r, &body, !textByDefault); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.RunID == nil {
		h.fail(w, r, badRequest("missing_field", "run_id is required"))
		return
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
		h.fail(w, r, err)
		return
	}
	if textByDefault && !wantsJSON(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, res.Config.Text)
		return
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
}

func (h *handler) mapRoles(w http.ResponseWriter, r *http.Request) { h.doMap(w, r, false, true) }

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

func (h *handler) myRoleMappings(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dec, snap, err := h.svc.MyGrants(r.Context(), id, RequestID(r.Context()))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"my_role_mappings": legacyGrouped(dec.Grants, snap)})
}

func (h *handler) roleMappings(w http.ResponseWriter, r *http.Request) {
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
	all := make(map[string]any, len(snap.Mappings))
	for org, m := range snap.Mappings {
		all[org] = m.Legacy()
	}
	writeJSON(w, http.StatusOK, map[string]any{"all_role_mappings": all})
}

// orgField reads and checks the domino_org field of a legacy body.
func orgField(raw map[string]json.RawMessage) (string, error) {
	v, ok := raw["domino_org"]
	if !ok {
		return "", badRequest("missing_field", "domino_org is required")
	}
	var org string
	if err := json.Unmarshal(v, &org); err != nil {
		return "", badRequest("invalid_field", `field "domino_org" must be a string`)
	}
	if strings.TrimSpace(org) == "" {
		return "", badRequest("missing_field", "domino_org is required")
	}
	return org, nil
}

func (h *handler) updateRoleMapping(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(r, &raw, false); err != nil {
		h.fail(w, r, err)
		return
	}
	org, err := orgField(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	delete(raw, "domino_org")
	b, _ := json.Marshal(raw)
	pair, err := mapping.DecodePair(b)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	m := mapping.Mapping{Org: org, Pairs: []mapping.RolePair{pair}}
	if err := h.svc.PutMapping(r.Context(), id, m, RequestID(r.Context())); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domino_org": org, "role_mapping": m.Legacy()})
}

func (h *handler) updateMultiroleMapping(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(r, &raw, false); err != nil {
		h.fail(w, r, err)
		return
	}
	org, err := orgField(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var items []json.RawMessage
	rd, ok := raw["role_data"]
	if !ok {
		h.fail(w, r, badRequest("missing_field", "role_data is required"))
		return
	}
	if err := json.Unmarshal(rd, &items); err != nil {
		h.fail(w, r, badRequest("invalid_field", `field "role_data" must be a list of role pairs`))
		return
	}
	m := mapping.Mapping{Org: org, Multi: true}
	for _, it := range items {
		pair, err := mapping.DecodePair(it)
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
	writeJSON(w, http.StatusOK, map[string]any{"domino_org": org, "role_mapping": m.Legacy()})
}

func (h *handler) deleteRoleMapping(w http.ResponseWriter, r *http.Request) {
	id, err := h.caller(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(r, &raw, false); err != nil {
		h.fail(w, r, err)
		return
	}
	org, err := orgField(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.svc.DeleteMapping(r.Context(), id, org, RequestID(r.Context())); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domino_org": org, "deleted": true})
}

func (h *handler) serviceAccount(create bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := h.caller(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		var body struct {
			Name *string `json:"service_account_name"`
		}
		if err := decodeJSON(r, &body, false); err != nil {
			h.fail(w, r, err)
			return
		}
		if body.Name == nil {
			h.fail(w, r, badRequest("missing_field", "service_account_name is required"))
			return
		}
		if create {
			err = h.svc.CreateServiceAccount(r.Context(), id, *body.Name, RequestID(r.Context()))
		} else {
			err = h.svc.DeleteServiceAccount(r.Context(), id, *body.Name, RequestID(r.Context()))
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"service_account_name": *body.Name, "created": create, "deleted": !create})
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
