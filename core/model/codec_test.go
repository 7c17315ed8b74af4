package model

import (
	"encoding/json"
	"errors"
	"testing"
)

const (
	assetARN = "arn:aws:iam::524112250363:role/acme-list-bucket-role"
	proxyARN = "arn:aws:iam::946429944765:role/acme-list-bucket-role"
)

func TestDecodePair(t *testing.T) {
	p, err := DecodePair(json.RawMessage(`{"iam_role_arn":"` + assetARN + `","proxy_iam_role_arn":"` + proxyARN + `","update_iam_role_trust_policy":"false"}`))
	if err != nil || p != (RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}) {
		t.Fatalf("got %+v, %v", p, err)
	}
	for _, bad := range []string{`null`, `[]`, `"x"`, `{`, `{"iam_role_arn":null,"proxy_iam_role_arn":"` + proxyARN + `"}`} {
		var ve *ValidationError
		if _, err := DecodePair(json.RawMessage(bad)); !errors.As(err, &ve) {
			t.Errorf("DecodePair(%s) err = %v, want *ValidationError", bad, err)
		}
	}
}
