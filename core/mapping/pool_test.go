package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
)

const (
	poolMember2 = "arn:aws:iam::946429944765:role/acme-proxy-2"
	poolMember3 = "arn:aws:iam::946429944765:role/acme-proxy-3"
	templateARN = "arn:aws:iam::946429944765:role/acme-proxy-template"
	boundaryARN = "arn:aws:iam::946429944765:policy/irsa-pool-boundary"
)

func poolPair(elastic bool) model.RolePair {
	p := model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "acme", Members: []string{proxyARN, poolMember2, poolMember3}}}
	if elastic {
		p.ProxyPool.Elastic = &model.ElasticPool{TemplateRoleARN: templateARN, Path: "/irsa-pools/acme/",
			PermissionsBoundaryARN: boundaryARN, MaxMembers: 40, EmptyGraceSeconds: 600}
	}
	return p
}

func TestPoolValue(t *testing.T) {
	static := model.Mapping{Org: "acme", Pairs: []model.RolePair{poolPair(false)}}
	want := `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "update_iam_role_trust_policy": true, ` +
		`"proxy_pool": {"name": "acme", "members": ["` + proxyARN + `", "` + poolMember2 + `", "` + poolMember3 + `"]}}`
	if got := Value(static); got != want {
		t.Errorf("static pool:\n got %s\nwant %s", got, want)
	}
	elastic := model.Mapping{Org: "acme", Multi: true, Pairs: []model.RolePair{poolPair(true), {IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: true}}}
	v := Value(elastic)
	if !strings.Contains(v, `"elastic": {"template_role_arn": "`+templateARN+`", "path": "/irsa-pools/acme/", "permissions_boundary_arn": "`+boundaryARN+`", "max_members": 40, "empty_grace_seconds": 600}`) {
		t.Errorf("elastic pool value: %s", v)
	}
	if !strings.HasSuffix(v, `{"iam_role_arn": "`+asset2+`", "proxy_iam_role_arn": "`+proxy2+`", "update_iam_role_trust_policy": true}]`) {
		t.Errorf("a single role beside a pool must keep the legacy form: %s", v)
	}
	for _, m := range []model.Mapping{static, elastic} {
		back, err := ParseValue(m.Org, Value(m))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Errorf("round trip: %+v, %v; want %+v", back, err, m)
		}
		// A reader that knows no pools (the existing service) sees a valid
		// pair whose proxy role is the pool's first member.
		var old []struct {
			IAM   string `json:"iam_role_arn"`
			Proxy string `json:"proxy_iam_role_arn"`
		}
		raw := Value(m)
		if !strings.HasPrefix(raw, "[") {
			raw = "[" + raw + "]"
		}
		if err := json.Unmarshal([]byte(raw), &old); err != nil || old[0].IAM != assetARN || old[0].Proxy != proxyARN {
			t.Errorf("old reader: %+v, %v", old, err)
		}
	}
}

func TestPoolDecode(t *testing.T) {
	members := `"members": ["` + proxyARN + `", "` + poolMember2 + `"]`
	tests := []struct {
		name, value, field string
	}{
		{"proxy ARN may be left out", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {` + members + `}}`, ""},
		{"null pool is no pool", `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "proxy_pool": null}`, ""},
		{"first member must be the proxy", `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + poolMember2 + `", "proxy_pool": {` + members + `}}`, "proxy_pool.members"},
		{"no members", `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "proxy_pool": {"members": []}}`, "proxy_pool.members"},
		{"duplicate member", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"members": ["` + proxyARN + `", "` + proxyARN + `"]}}`, "proxy_pool.members"},
		{"wildcard member", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"members": ["` + proxyARN + `", "arn:aws:iam::946429944765:role/p*"]}}`, "proxy_pool.members"},
		{"other account", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"members": ["` + proxyARN + `", "arn:aws:iam::111111111111:role/p"]}}`, "proxy_pool.members"},
		{"unknown pool field", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {` + members + `, "menbers": 1}}`, "proxy_pool"},
		{"pool not an object", `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "proxy_pool": ["x"]}`, "proxy_pool"},
		{"bad name", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"name": "a b", ` + members + `}}`, "proxy_pool.name"},
		{"elastic needs a name", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {` + members + `, "elastic": {"template_role_arn": "` + templateARN + `", "path": "/p/", "permissions_boundary_arn": "` + boundaryARN + `"}}}`, "proxy_pool.name"},
		{"elastic root path", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"name": "acme", ` + members + `, "elastic": {"template_role_arn": "` + templateARN + `", "path": "/", "permissions_boundary_arn": "` + boundaryARN + `"}}}`, "proxy_pool.elastic.path"},
		{"elastic without boundary", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"name": "acme", ` + members + `, "elastic": {"template_role_arn": "` + templateARN + `", "path": "/p/"}}}`, "proxy_pool.elastic.permissions_boundary_arn"},
		{"elastic unknown field", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"name": "acme", ` + members + `, "elastic": {"template": "x"}}}`, "proxy_pool"},
		{"static member under the elastic path", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"name": "acme", "members": ["arn:aws:iam::946429944765:role/p/x"], "elastic": {"template_role_arn": "` + templateARN + `", "path": "/p/", "permissions_boundary_arn": "` + boundaryARN + `"}}}`, "proxy_pool.elastic.path"},
		{"elastic ok", `{"iam_role_arn": "` + assetARN + `", "proxy_pool": {"name": "acme", ` + members + `, "elastic": {"template_role_arn": "` + templateARN + `", "path": "/irsa-pools/acme/", "permissions_boundary_arn": "` + boundaryARN + `"}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseValue("acme", tt.value)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Pairs[0].ProxyIAMRoleARN != proxyARN {
					t.Fatalf("proxy = %s", m.Pairs[0].ProxyIAMRoleARN)
				}
				return
			}
			var ve *model.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestPoolHelpers(t *testing.T) {
	p := poolPair(true)
	if got := model.ProxyRolesToUpdate([]model.RolePair{p, {ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: true}}); !reflect.DeepEqual(got, []string{proxyARN, poolMember2, poolMember3, proxy2}) {
		t.Errorf("ProxyRolesToUpdate = %v: every static member is swept", got)
	}
	single := model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN}
	if single.PoolName() != "acme-list-bucket-role" || len(single.ProxyMembers()) != 1 || single.IsPool() {
		t.Errorf("a single role is a pool of one named after it: %q %v", single.PoolName(), single.ProxyMembers())
	}
	snap := model.Snapshot{Mappings: map[string]model.Mapping{"acme": {Org: "acme", Pairs: []model.RolePair{p}}}}
	g := snap.PoolOf(model.Grant{Org: "acme", RolePair: model.RolePair{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}})
	if g.ProxyPool == nil || g.ProxyPool.Name != "acme" {
		t.Errorf("PoolOf did not find the pool: %+v", g)
	}
	if g := snap.PoolOf(model.Grant{Org: "other", RolePair: single}); g.ProxyPool != nil {
		t.Errorf("PoolOf invented a pool: %+v", g)
	}
	if n, ok := model.ParseElasticMemberName("acme", model.ElasticMemberName("acme", 7)); !ok || n != 7 {
		t.Errorf("elastic member name round trip: %d %v", n, ok)
	}
	for _, bad := range []string{"acme-7", "acme-00a", "acme-000", "other-001", "acme-0001"} {
		if _, ok := model.ParseElasticMemberName("acme", bad); ok {
			t.Errorf("ParseElasticMemberName(%q) accepted", bad)
		}
	}
	c := model.Mapping{Org: "acme", Pairs: []model.RolePair{p}}.Clone()
	c.Pairs[0].ProxyPool.Members[0] = "x"
	if p.ProxyPool.Members[0] != proxyARN {
		t.Error("Clone shares the pool's members")
	}
}

// FuzzParsePoolValue: any value that parses re-encodes to a value that
// parses to the same mapping, validates, and keeps its first member as the
// legacy proxy_iam_role_arn.
func FuzzParsePoolValue(f *testing.F) {
	for _, m := range []model.Mapping{
		{Org: "acme", Pairs: []model.RolePair{poolPair(false)}},
		{Org: "acme", Multi: true, Pairs: []model.RolePair{poolPair(true)}},
	} {
		f.Add(m.Org, Value(m))
	}
	f.Add("acme", `{"iam_role_arn": "`+assetARN+`", "proxy_pool": {"members": ["`+proxyARN+`"], "name": "p\u0041"}}`)
	f.Add("acme", `{"iam_role_arn": "`+assetARN+`", "proxy_pool": {"members": ["`+proxyARN+`"], "elastic": null}}`)
	f.Fuzz(func(t *testing.T, org, value string) {
		m, ok := parsedValue(t, org, value)
		if !ok {
			return
		}
		for _, p := range m.Pairs {
			if p.ProxyMembers()[0] != p.ProxyIAMRoleARN {
				t.Fatalf("first member %s is not the proxy role %s", p.ProxyMembers()[0], p.ProxyIAMRoleARN)
			}
			for _, r := range p.ProxyMembers() {
				if strings.ContainsAny(r, "*?") {
					t.Fatalf("member with a wildcard accepted: %q", r)
				}
			}
		}
		roundTrips(t, org, m)
	})
}

// TestSnapshotLeavesOutConflictingPools: two orgs whose pools could take
// each other's roles (a copy-pasted elastic pool, written around the
// broker's check) are both left out of the snapshot of every store; the
// other orgs are kept.
func TestSnapshotLeavesOutConflictingPools(t *testing.T) {
	a := model.Mapping{Org: "a", Pairs: []model.RolePair{poolPair(true)}}
	b := model.Mapping{Org: "b", Pairs: []model.RolePair{poolPair(true)}}
	c := model.Mapping{Org: "c", Pairs: []model.RolePair{{IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: true}}}
	path := filepath.Join(t.TempDir(), "mappings.json")
	raw, _ := json.Marshal(map[string]string{"a": Value(a), "b": Value(b), "c": Value(c)})
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := NewFileStore(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Store{"file": file, "memory": NewMemoryStore(a, b, c)} {
		snap, err := s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(snap.Mappings)); !slices.Equal(got, []string{"c"}) {
			t.Errorf("%s store: snapshot has orgs %v, want only c", name, got)
		}
	}
}
