package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// These tests put the HTTP layer alone in front of a fake Service: which
// route reaches which use case with which arguments, and how each error
// kind is answered. The real stack is tested in api_test.go.

// serviceCall is one use-case call the fake saw.
type serviceCall struct {
	Method    string
	Caller    sdk.Identity
	Map       broker.MapRequest
	Mapping   model.Mapping
	Arg       string // org, service-account name or action
	RequestID string
}

// fakeService answers every use case with its fixed results, or with err.
type fakeService struct {
	identity sdk.Identity
	authErr  error
	err      error
	mapRes   broker.MapResult
	dec      policy.Decision
	snap     model.Snapshot

	mu      sync.Mutex
	creds   []sdk.Credentials
	calls   []serviceCall
	batches []model.Batch
}

var _ api.Service = (*fakeService)(nil)

func (f *fakeService) record(c serviceCall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.err
}

func (f *fakeService) seen() ([]sdk.Credentials, []serviceCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sdk.Credentials(nil), f.creds...), append([]serviceCall(nil), f.calls...)
}

func (f *fakeService) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creds = append(f.creds, c)
	if f.authErr != nil {
		return sdk.Identity{}, f.authErr
	}
	return f.identity, nil
}

func (f *fakeService) Authorize(_ context.Context, caller sdk.Identity, action, requestID string) error {
	return f.record(serviceCall{Method: "Authorize", Caller: caller, Arg: action, RequestID: requestID})
}

func (f *fakeService) Map(_ context.Context, req broker.MapRequest) (broker.MapResult, error) {
	if err := f.record(serviceCall{Method: "Map", Map: req}); err != nil {
		return broker.MapResult{}, err
	}
	return f.mapRes, nil
}

func (f *fakeService) MyGrants(_ context.Context, caller sdk.Identity, requestID string) (policy.Decision, model.Snapshot, error) {
	if err := f.record(serviceCall{Method: "MyGrants", Caller: caller, RequestID: requestID}); err != nil {
		return policy.Decision{}, model.Snapshot{}, err
	}
	return f.dec, f.snap, nil
}

func (f *fakeService) Mappings(_ context.Context, caller sdk.Identity, requestID string) (model.Snapshot, error) {
	if err := f.record(serviceCall{Method: "Mappings", Caller: caller, RequestID: requestID}); err != nil {
		return model.Snapshot{}, err
	}
	return f.snap, nil
}

func (f *fakeService) PutMapping(_ context.Context, caller sdk.Identity, m model.Mapping, requestID string) error {
	return f.record(serviceCall{Method: "PutMapping", Caller: caller, Mapping: m, RequestID: requestID})
}

func (f *fakeService) DeleteMapping(_ context.Context, caller sdk.Identity, org, requestID string) error {
	return f.record(serviceCall{Method: "DeleteMapping", Caller: caller, Arg: org, RequestID: requestID})
}

func (f *fakeService) ApplyMappings(_ context.Context, caller sdk.Identity, b model.Batch, requestID string) (string, error) {
	f.mu.Lock()
	f.batches = append(f.batches, b)
	f.mu.Unlock()
	if err := f.record(serviceCall{Method: "ApplyMappings", Caller: caller, RequestID: requestID}); err != nil {
		return "", err
	}
	return "r4", nil
}

func (f *fakeService) CreateServiceAccount(_ context.Context, caller sdk.Identity, name, requestID string) error {
	return f.record(serviceCall{Method: "CreateServiceAccount", Caller: caller, Arg: name, RequestID: requestID})
}

func (f *fakeService) DeleteServiceAccount(_ context.Context, caller sdk.Identity, name, requestID string) error {
	return f.record(serviceCall{Method: "DeleteServiceAccount", Caller: caller, Arg: name, RequestID: requestID})
}

const (
	assetARN  = "arn:aws:iam::524112250363:role/acme-list-bucket-role"
	proxyARN  = "arn:aws:iam::946429944765:role/acme-list-bucket-role"
	proxyARN2 = "arn:aws:iam::946429944765:role/acme-proxy-2"
	configTxt = "[profile acme-list-bucket-role]\nsource_profile = src_acme-list-bucket-role\n"
)

var dana = sdk.Identity{ID: "u7", Username: "dana", Organizations: []string{"acme"}}

func newFakeService() *fakeService {
	g := model.Grant{Org: "acme", RolePair: model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}
	m := model.Mapping{Org: "acme", Pairs: []model.RolePair{g.RolePair}}
	return &fakeService{
		identity: dana,
		mapRes: broker.MapResult{
			Config:  awsconfig.Config{Text: configTxt, Profiles: []awsconfig.Profile{{Name: "acme-list-bucket-role"}}},
			Grants:  []model.Grant{g},
			Subject: "system:serviceaccount:domino-compute:run-run1", DecisionID: "d9",
		},
		dec:  policy.Decision{ID: "d9", Grants: []model.Grant{g}},
		snap: model.Snapshot{Revision: "r3", Mappings: map[string]model.Mapping{"acme": m}},
	}
}

type svcResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request to srv; hdr are header name/value pairs.
func do(t *testing.T, srv *httptest.Server, method, path, body string, hdr map[string]string) svcResponse {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return svcResponse{status: res.StatusCode, header: res.Header, body: b}
}

func serve(t *testing.T, f *fakeService) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(api.NewHandler(api.Options{Service: f}))
	t.Cleanup(srv.Close)
	return srv
}

func pairJSON(proxy, flag string) string {
	s := `{"iam_role_arn":"` + assetARN + `","proxy_iam_role_arn":"` + proxy + `"`
	if flag != "" {
		s += `,"update_iam_role_trust_policy":` + flag
	}
	return s + "}"
}

func TestRoutesReachTheService(t *testing.T) {
	pair := func(proxy string, update bool) model.RolePair {
		return model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: update}
	}
	mapCall := func(runID, wt, podToken string, dryRun bool) serviceCall {
		return serviceCall{Method: "Map", Map: broker.MapRequest{Caller: dana, RunID: runID, WorkloadType: wt, PodToken: podToken, DryRun: dryRun}}
	}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
		want                     serviceCall // RequestID is filled in
		checkBody                func(t *testing.T, r svcResponse)
	}{
		{
			name: "legacy map", method: "POST", path: brokerapi.PathMap,
			body:   `{"run_id":"run1","irsa_workload_type":"cluster-worker"}`,
			header: map[string]string{brokerapi.HeaderPodToken: "pod-token-1"},
			want:   mapCall("run1", "cluster-worker", "pod-token-1", false),
			checkBody: func(t *testing.T, r svcResponse) {
				if string(r.body) != configTxt || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
					t.Errorf("legacy map answered %q (%s), want the config text", r.body, r.header.Get("Content-Type"))
				}
			},
		},
		{
			name: "legacy map without workload type or pod token", method: "POST", path: brokerapi.PathMap,
			body: `{"run_id":"run2"}`, want: mapCall("run2", "", "", false),
		},
		{
			name: "v2 map", method: "POST", path: brokerapi.PathV2Map,
			body:   `{"run_id":"run1","irsa_workload_type":"edge-workload"}`,
			header: map[string]string{brokerapi.HeaderPodToken: "pod-token-2"},
			want:   mapCall("run1", "edge-workload", "pod-token-2", false),
			checkBody: func(t *testing.T, r svcResponse) {
				var out struct {
					Config     string `json:"config"`
					Subject    string `json:"subject"`
					DecisionID string `json:"decision_id"`
					DryRun     bool   `json:"dry_run"`
				}
				if err := json.Unmarshal(r.body, &out); err != nil || out.Config != configTxt || out.DryRun || out.DecisionID != "d9" ||
					out.Subject != "system:serviceaccount:domino-compute:run-run1" {
					t.Errorf("v2 map answered %s (%v)", r.body, err)
				}
			},
		},
		{
			name: "v2 preview", method: "POST", path: brokerapi.PathV2Preview,
			body: `{"run_id":"run1"}`, want: mapCall("run1", "", "", true),
			checkBody: func(t *testing.T, r svcResponse) {
				if !bytes.Contains(r.body, []byte(`"dry_run":true`)) {
					t.Errorf("preview answered %s", r.body)
				}
			},
		},
		{
			name: "legacy my mappings", method: "GET", path: brokerapi.PathMyRoleMappings,
			want: serviceCall{Method: "MyGrants", Caller: dana},
			checkBody: func(t *testing.T, r svcResponse) {
				var out map[string]map[string]model.RolePair
				if err := json.Unmarshal(r.body, &out); err != nil || out["my_role_mappings"]["acme"].ProxyIAMRoleARN != proxyARN {
					t.Errorf("my_role_mappings answered %s (%v)", r.body, err)
				}
			},
		},
		{name: "v2 grants", method: "GET", path: brokerapi.PathV2Grants, want: serviceCall{Method: "MyGrants", Caller: dana}},
		{
			name: "legacy all mappings", method: "GET", path: brokerapi.PathRoleMappings,
			want: serviceCall{Method: "Mappings", Caller: dana},
			checkBody: func(t *testing.T, r svcResponse) {
				if !bytes.Contains(r.body, []byte(`"all_role_mappings":{"acme":{`)) {
					t.Errorf("role_mappings answered %s", r.body)
				}
			},
		},
		{name: "v2 mappings", method: "GET", path: brokerapi.PathV2Mappings, want: serviceCall{Method: "Mappings", Caller: dana}},
		{name: "v2 one mapping", method: "GET", path: brokerapi.PathV2Mappings + "/acme", want: serviceCall{Method: "Mappings", Caller: dana}},
		{
			name: "legacy update, flag as string false", method: "POST", path: brokerapi.PathUpdateMapping,
			body: `{"domino_org":"acme","iam_role_arn":"` + assetARN + `","proxy_iam_role_arn":"` + proxyARN + `","update_iam_role_trust_policy":"false"}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair(proxyARN, false)}}},
		},
		{
			name: "legacy update, flag as string true", method: "POST", path: brokerapi.PathUpdateMapping,
			body: `{"domino_org":"acme","iam_role_arn":"` + assetARN + `","proxy_iam_role_arn":"` + proxyARN + `","update_iam_role_trust_policy":"true"}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair(proxyARN, true)}}},
		},
		{
			name: "legacy update, flag absent", method: "POST", path: brokerapi.PathUpdateMapping,
			body: `{"domino_org":"acme","iam_role_arn":"` + assetARN + `","proxy_iam_role_arn":"` + proxyARN + `"}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair(proxyARN, true)}}},
		},
		{
			name: "legacy multi-role update", method: "POST", path: brokerapi.PathUpdateMultirole,
			body: `{"domino_org":"acme","role_data":[` + pairJSON(proxyARN, `"false"`) + `,` + pairJSON(proxyARN2, `true`) + `]}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Multi: true,
				Pairs: []model.RolePair{pair(proxyARN, false), pair(proxyARN2, true)}}},
		},
		{
			name: "legacy multi-role update with one pair", method: "POST", path: brokerapi.PathUpdateMultirole,
			body: `{"domino_org":"acme","role_data":[` + pairJSON(proxyARN, `"TRUE"`) + `]}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Multi: true,
				Pairs: []model.RolePair{pair(proxyARN, true)}}},
		},
		{
			name: "v2 put, one pair", method: "PUT", path: brokerapi.PathV2Mappings + "/acme",
			body: `{"role_pairs":[` + pairJSON(proxyARN, `"false"`) + `]}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Pairs: []model.RolePair{pair(proxyARN, false)}}},
		},
		{
			name: "v2 put, two pairs", method: "PUT", path: brokerapi.PathV2Mappings + "/acme",
			body: `{"role_pairs":[` + pairJSON(proxyARN, "") + `,` + pairJSON(proxyARN2, `false`) + `]}`,
			want: serviceCall{Method: "PutMapping", Caller: dana, Mapping: model.Mapping{Org: "acme", Multi: true,
				Pairs: []model.RolePair{pair(proxyARN, true), pair(proxyARN2, false)}}},
		},
		{
			name: "legacy delete", method: "DELETE", path: brokerapi.PathDeleteMapping,
			body: `{"domino_org":"acme"}`, want: serviceCall{Method: "DeleteMapping", Caller: dana, Arg: "acme"},
		},
		{
			name: "v2 delete", method: "DELETE", path: brokerapi.PathV2Mappings + "/acme", wantStatus: http.StatusNoContent,
			want: serviceCall{Method: "DeleteMapping", Caller: dana, Arg: "acme"},
		},
		{
			name: "create service account", method: "POST", path: brokerapi.PathServiceAccount,
			body: `{"service_account_name":"sa-1"}`, want: serviceCall{Method: "CreateServiceAccount", Caller: dana, Arg: "sa-1"},
		},
		{
			name: "delete service account", method: "DELETE", path: brokerapi.PathServiceAccount,
			body: `{"service_account_name":"sa-1"}`, want: serviceCall{Method: "DeleteServiceAccount", Caller: dana, Arg: "sa-1"},
		},
		{
			name: "v2 status is authorized", method: "GET", path: brokerapi.PathV2Status,
			want: serviceCall{Method: "Authorize", Caller: dana, Arg: broker.ActionStatusRead},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService()
			srv := serve(t, f)
			// A request id of the header's grammar, distinct per case.
			reqID := strings.Map(func(r rune) rune {
				if r == ' ' || r == ',' {
					return '-'
				}
				return r
			}, tt.name)
			hdr := map[string]string{brokerapi.HeaderAuthorization: "Bearer user-token", brokerapi.HeaderRequestID: reqID}
			for k, v := range tt.header {
				hdr[k] = v
			}
			r := do(t, srv, tt.method, tt.path, tt.body, hdr)

			wantStatus := tt.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if r.status != wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, wantStatus, r.body)
			}
			if got := r.header.Get(brokerapi.HeaderRequestID); got != reqID {
				t.Errorf("%s = %q, want %q", brokerapi.HeaderRequestID, got, reqID)
			}
			creds, calls := f.seen()
			if want := (sdk.Credentials{Token: "user-token", Header: brokerapi.HeaderAuthorization}); len(creds) != 1 || creds[0] != want {
				t.Errorf("Authenticate saw %+v, want %+v once", creds, want)
			}
			want := tt.want
			if want.Method == "Map" {
				want.Map.RequestID = reqID
			} else {
				want.RequestID = reqID
			}
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], want) {
				t.Errorf("service calls = %+v\nwant %+v", calls, want)
			}
			if tt.checkBody != nil {
				tt.checkBody(t, r)
			}
		})
	}
}

// A Domino API key is passed on as such.
func TestAPIKeyReachesAuthenticate(t *testing.T) {
	f := newFakeService()
	r := do(t, serve(t, f), "GET", brokerapi.PathV2WhoAmI, "", map[string]string{brokerapi.HeaderDominoAPIKey: "key-1"})
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	creds, _ := f.seen()
	if want := (sdk.Credentials{Token: "key-1", Header: brokerapi.HeaderDominoAPIKey}); len(creds) != 1 || creds[0] != want {
		t.Errorf("Authenticate saw %+v, want %+v", creds, want)
	}
}

// Every kind of error a use case returns is answered with its status, code,
// message and Retry-After, in the one error shape, naming the request; the
// cause never reaches the caller.
func TestServiceErrorsBecomeStatuses(t *testing.T) {
	const secret = "cause-with-secret-hunter2"
	kinds := []struct {
		kind       model.Kind
		wantStatus int
		retryAfter string
	}{
		{kind: model.KindInvalid, wantStatus: 400},
		{kind: model.KindUnauthenticated, wantStatus: 401},
		{kind: model.KindForbidden, wantStatus: 403},
		{kind: model.KindNotFound, wantStatus: 404},
		{kind: model.KindConflict, wantStatus: 409},
		{kind: model.KindUpstream, wantStatus: 502, retryAfter: "5"},
		{kind: model.KindMisconfigured, wantStatus: 502},
		{kind: model.KindUnavailable, wantStatus: 503, retryAfter: "5"},
		{kind: model.KindThrottled, wantStatus: 503, retryAfter: "2"},
		// KindInternal is what an unclassified error is.
		{kind: model.KindInternal, wantStatus: 500},
	}
	routes := []struct {
		name, method, path, body string
		auth                     bool // the error comes from Authenticate
	}{
		{name: "legacy map", method: "POST", path: brokerapi.PathMap, body: `{"run_id":"run1"}`},
		{name: "v2 map", method: "POST", path: brokerapi.PathV2Map, body: `{"run_id":"run1"}`},
		{name: "legacy mappings", method: "GET", path: brokerapi.PathRoleMappings},
		{name: "v2 put", method: "PUT", path: brokerapi.PathV2Mappings + "/acme", body: `{"role_pairs":[` + pairJSON(proxyARN, "") + `]}`},
		{name: "service account", method: "DELETE", path: brokerapi.PathServiceAccount, body: `{"service_account_name":"sa-1"}`},
		{name: "authentication", method: "GET", path: brokerapi.PathV2WhoAmI, auth: true},
	}
	for _, k := range kinds {
		for _, rt := range routes {
			t.Run(k.kind.String()+"/"+rt.name, func(t *testing.T) {
				code, message := "code_"+k.kind.String(), "message for "+k.kind.String()
				var err error = fmt.Errorf("layer: %w", model.Wrap(k.kind, code, message, errors.New(secret)))
				if k.kind == model.KindInternal {
					code, message = "internal", "internal error"
					err = fmt.Errorf("layer: store: %w", errors.New(secret))
				}
				f := newFakeService()
				if rt.auth {
					f.authErr = err
				} else {
					f.err = err
				}
				const reqID = "req-err.1"
				r := do(t, serve(t, f), rt.method, rt.path, rt.body, map[string]string{
					brokerapi.HeaderAuthorization: "Bearer user-token", brokerapi.HeaderRequestID: reqID,
				})

				if r.status != k.wantStatus {
					t.Errorf("status = %d, want %d", r.status, k.wantStatus)
				}
				if got := r.header.Get("Retry-After"); got != k.retryAfter {
					t.Errorf("Retry-After = %q, want %q", got, k.retryAfter)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				if got := r.header.Get(brokerapi.HeaderRequestID); got != reqID {
					t.Errorf("%s = %q, want %q", brokerapi.HeaderRequestID, got, reqID)
				}
				var body brokerapi.ErrorBody
				dec := json.NewDecoder(bytes.NewReader(r.body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&body); err != nil {
					t.Fatalf("error body %s is not a brokerapi.ErrorBody: %v", r.body, err)
				}
				if want := (brokerapi.ErrorDetail{Code: code, Message: message, RequestID: reqID}); body.Error != want {
					t.Errorf("error = %+v, want %+v", body.Error, want)
				}
				if bytes.Contains(r.body, []byte("hunter2")) || bytes.Contains(r.body, []byte("layer")) {
					t.Errorf("the cause leaked: %s", r.body)
				}
			})
		}
	}
}
