package api

import (
	"encoding/json"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

func TestLegacyShape(t *testing.T) {
	const asset, proxy = "arn:aws:iam::524112250363:role/a", "arn:aws:iam::946429944765:role/p"
	one := model.Mapping{Org: "acme", Pairs: []model.RolePair{{IAMRoleARN: asset, ProxyIAMRoleARN: proxy}}}
	got, _ := json.Marshal(legacyShape(one))
	want := `{"iam_role_arn":"` + asset + `","proxy_iam_role_arn":"` + proxy + `","update_iam_role_trust_policy":false}`
	if string(got) != want {
		t.Errorf("single legacy = %s, want %s", got, want)
	}
	multi := model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: asset, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: true}}}
	got, _ = json.Marshal(legacyShape(multi))
	want = `[{"iam_role_arn":"` + asset + `","proxy_iam_role_arn":"` + proxy + `","update_iam_role_trust_policy":true}]`
	if string(got) != want {
		t.Errorf("multi legacy = %s, want %s", got, want)
	}
}
