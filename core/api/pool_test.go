package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

var trustState = broker.TrustState{
	Pools: []broker.PoolState{{Name: "acme", Orgs: []string{"acme"}, Members: []broker.MemberState{{
		Role: proxyARN, Size: 1024, Quota: 2048, FillRatio: 0.5, FreeSlots: 16,
		Subjects: []broker.SubjectState{{Subject: "system:serviceaccount:domino-compute:run-7", Runs: []string{"7"}, Users: []string{"u7"}}},
	}}, Subjects: 1, FreeSlots: 16}},
	Roles: &broker.RolesUsage{Used: 12, Quota: 1000},
}

func (f *fakeService) Trust(_ context.Context, caller sdk.Identity, requestID string) (broker.TrustState, error) {
	if err := f.record(serviceCall{Method: "Trust", Caller: caller, RequestID: requestID}); err != nil {
		return broker.TrustState{}, err
	}
	return trustState, nil
}

const poolJSON = `"proxy_pool":{"name":"acme","members":["` + proxyARN + `","` + proxyARN2 + `"]}`

func TestPoolFormReachesTheService(t *testing.T) {
	want := model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "acme", Members: []string{proxyARN, proxyARN2}}}}}
	multi := want
	multi.Multi = true
	for _, tt := range []struct {
		name, method, path, body string
		want                     model.Mapping
	}{
		{"v2 put", "PUT", brokerapi.PathV2Mappings + "/acme", `{"role_pairs":[{"iam_role_arn":"` + assetARN + `",` + poolJSON + `}]}`, want},
		{"legacy multi-role", "POST", brokerapi.PathUpdateMultirole, `{"domino_org":"acme","role_data":[{"iam_role_arn":"` + assetARN + `","proxy_iam_role_arn":"` + proxyARN + `",` + poolJSON + `}]}`, multi},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService()
			r := do(t, serve(t, f), tt.method, tt.path, tt.body, map[string]string{"Authorization": "Bearer x"})
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			_, calls := f.seen()
			if len(calls) != 1 || calls[0].Method != "PutMapping" || !reflect.DeepEqual(calls[0].Mapping, tt.want) {
				t.Fatalf("calls = %+v", calls)
			}
			if !strings.Contains(string(r.body), `"proxy_pool":{"name":"acme","members":[`) {
				t.Fatalf("the answer shows the pool: %s", r.body)
			}
		})
	}
	// A misspelt pool field is a 400 naming it, and nothing is written.
	f := newFakeService()
	r := do(t, serve(t, f), "PUT", brokerapi.PathV2Mappings+"/acme", `{"role_pairs":[{"iam_role_arn":"`+assetARN+`","proxy_pool":{"menbers":[]}}]}`, map[string]string{"Authorization": "Bearer x"})
	if _, calls := f.seen(); r.status != http.StatusBadRequest || len(calls) != 0 || !strings.Contains(string(r.body), "proxy_pool") {
		t.Fatalf("status %d %s, calls %v", r.status, r.body, calls)
	}
}

func TestV2Trust(t *testing.T) {
	f := newFakeService()
	r := do(t, serve(t, f), "GET", api2Trust, "", map[string]string{"Authorization": "Bearer x"})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got broker.TrustState
	if err := json.Unmarshal(r.body, &got); err != nil || !reflect.DeepEqual(got, trustState) {
		t.Fatalf("answer %s (%v)", r.body, err)
	}
	for _, k := range []string{`"pools":[`, `"role_arn":`, `"fill_ratio":0.5`, `"free_slots":16`, `"runs":["7"]`, `"users":["u7"]`, `"roles":{"used":12,"quota":1000}`} {
		if !strings.Contains(string(r.body), k) {
			t.Errorf("answer lacks %s: %s", k, r.body)
		}
	}
	f.err = model.Errorf(model.KindForbidden, "forbidden", "dana is not allowed to mapping.read")
	if r := do(t, serve(t, f), "GET", api2Trust, "", map[string]string{"Authorization": "Bearer x"}); r.status != http.StatusForbidden {
		t.Fatalf("forbidden: status %d", r.status)
	}
}

const api2Trust = brokerapi.PathV2 + "/trust"
