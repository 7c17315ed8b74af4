package model

import (
	"strings"
	"testing"
)

func TestPoolConflicts(t *testing.T) {
	const acct = "arn:aws:iam::946429944765:role"
	elastic := func(name, path, static string) RolePair {
		return RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/asset-" + name, ProxyIAMRoleARN: acct + static, UpdateTrustPolicy: true,
			ProxyPool: &ProxyPool{Name: name, Members: []string{acct + static}, Elastic: &ElasticPool{
				TemplateRoleARN: acct + "/" + name + "-template", Path: path, PermissionsBoundaryARN: "arn:aws:iam::946429944765:policy/b"}}}
	}
	static := func(name string, members ...string) RolePair {
		for i := range members {
			members[i] = acct + members[i]
		}
		return RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/asset", ProxyIAMRoleARN: members[0], UpdateTrustPolicy: true,
			ProxyPool: &ProxyPool{Name: name, Members: members}}
	}
	single := func(proxy string) RolePair {
		return RolePair{IAMRoleARN: "arn:aws:iam::524112250363:role/asset", ProxyIAMRoleARN: acct + proxy, UpdateTrustPolicy: true}
	}
	acme := elastic("acme", "/irsa-pools/acme/", "/acme-1")
	tests := []struct {
		name  string
		ms    map[string][]RolePair
		want  string // "" for none; else a part of the first conflict's message
		field string
	}{
		{"distinct pools", map[string][]RolePair{
			"a": {acme}, "b": {elastic("beta", "/irsa-pools/beta/", "/beta-1")}, "c": {single("/shared")}, "d": {single("/shared")}}, "", ""},
		{"one org's pairs sharing its pool", map[string][]RolePair{
			"a": {acme, func() RolePair { p := acme; p.IAMRoleARN += "-2"; return p }()}}, "", ""},
		{"copy-pasted elastic pool in another org", map[string][]RolePair{
			"a": {acme}, "b": {acme}}, `pool name "acme" of org "a" is also the name of a pool of org "b"`, "proxy_pool.name"},
		{"same name, other path", map[string][]RolePair{
			"a": {acme}, "b": {elastic("ACME", "/irsa-pools/b/", "/b-1")}}, `pool name "acme"`, "proxy_pool.name"},
		{"same path, other name", map[string][]RolePair{
			"a": {acme}, "b": {elastic("beta", "/irsa-pools/acme/", "/b-1")}}, "are equal or nested", "proxy_pool.elastic.path"},
		{"nested path", map[string][]RolePair{
			"a": {acme}, "b": {elastic("beta", "/irsa-pools/", "/b-1")}}, "are equal or nested", "proxy_pool.elastic.path"},
		{"two pools of one org with nested paths", map[string][]RolePair{
			"a": {acme, elastic("beta", "/irsa-pools/acme/beta/", "/b-1")}}, "are equal or nested", "proxy_pool.elastic.path"},
		{"static pools with one name", map[string][]RolePair{
			"a": {static("web", "/w-1", "/w-2")}, "b": {static("web", "/x-1")}}, `pool name "web"`, "proxy_pool.name"},
		{"single proxy role under another's elastic path", map[string][]RolePair{
			"a": {acme}, "b": {single("/irsa-pools/acme/acme-001")}}, "under the elastic path /irsa-pools/acme/", "proxy_pool.elastic.path"},
		{"static member under another's elastic path", map[string][]RolePair{
			"a": {acme}, "b": {static("web", "/w-1", "/irsa-pools/acme/sub/w-2")}}, "under the elastic path", "proxy_pool.elastic.path"},
		{"template under another's elastic path", map[string][]RolePair{
			"a": {acme}, "b": {func() RolePair {
				p := elastic("beta", "/irsa-pools/beta/", "/b-1")
				p.ProxyPool.Elastic.TemplateRoleARN = acct + "/irsa-pools/acme/t"
				return p
			}()}}, "under the elastic path /irsa-pools/acme/", "proxy_pool.elastic.path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := map[string]Mapping{}
			for org, pairs := range tc.ms {
				m := Mapping{Org: org, Pairs: pairs}
				if err := m.Validate(); err != nil {
					t.Fatalf("mapping %s: %v", org, err)
				}
				ms[org] = m
			}
			cs := PoolConflicts(ms)
			if tc.want == "" {
				if len(cs) != 0 {
					t.Fatalf("conflicts %v, want none", cs)
				}
				return
			}
			if len(cs) == 0 || !strings.Contains(cs[0].Message, tc.want) || cs[0].Field != tc.field {
				t.Fatalf("conflicts %v, want %s: %q first", cs, tc.field, tc.want)
			}
			err := CheckPoolConflicts(ms, cs[0].Orgs[1])
			if k, code, _ := Classify(err); k != KindInvalid || code != "invalid_mapping" {
				t.Fatalf("CheckPoolConflicts = %v (%v %s)", err, k, code)
			}
			DropPoolConflicts(ms)
			for _, org := range cs[0].Orgs {
				if _, ok := ms[org]; ok {
					t.Fatalf("DropPoolConflicts kept org %s", org)
				}
			}
		})
	}
}
