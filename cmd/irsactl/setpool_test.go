package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// TestMappingsSetPool: the pool forms of mappings set (the --pool/--member
// shorthand in poolStack, and --proxy with a proxy_pool object), what the
// broker stores, and an export of pools that imports back unchanged.
func TestMappingsSetPool(t *testing.T) {
	c := poolStack(t)
	const role = "acme-update-bucket-role"
	elastic := `{"name": "reads", "members": ["` + proxyAcct + `acme-read-bucket-role"],
	  "elastic": {"template_role_arn": "` + proxyAcct + `acme-read-bucket-role", "path": "/irsa-pools/reads/",
	              "permissions_boundary_arn": "arn:aws:iam::946429944765:policy/irsa-pool-boundary", "max_members": 5}}`
	c.golden("mappings-set-pool-json", c.ok("mappings", "set", "reads", "--multi",
		"--asset", assetAcct+"acme-read-bucket-role", "--proxy", elastic,
		"--asset", assetAcct+role, "--proxy", proxyAcct+role, "--trust-update=true", "--trust-update=false"))
	c.golden("mappings-list-pools", c.ok("mappings", "list"))

	var got mappingV2
	if err := json.Unmarshal([]byte(c.ok("mappings", "get", "irsa-iamrole-update-bucket", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	want := model.RolePair{IAMRoleARN: assetAcct + role, ProxyIAMRoleARN: proxyAcct + role, UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "update", Members: []string{proxyAcct + role, proxyAcct + role + "-2", proxyAcct + role + "-3"}}}
	if len(got.RolePairs) != 1 || !reflect.DeepEqual(got.RolePairs[0], want) {
		t.Errorf("stored %+v, want %+v", got.RolePairs, want)
	}

	// Pools survive export and import: nothing to do.
	file := filepath.Join(t.TempDir(), "backup.json")
	if err := os.WriteFile(file, []byte(c.ok("mappings", "export")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("mappings", "import", file, "--prune"); !strings.Contains(out, "0 to add, 0 to change, 0 to delete, 4 unchanged") {
		t.Errorf("import of the export:\n%s", out)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"misspelt pool field", []string{"--asset", assetAcct + role, "--proxy", `{"name": "p", "menbers": ["` + proxyAcct + role + `"]}`}, exitUsage, "menbers"},
		{"pool without members", []string{"--asset", assetAcct + role, "--proxy", `{"name": "p"}`}, exitUsage, "proxy_pool"},
		{"--pool without --member", []string{"--asset", assetAcct + role, "--pool", "p"}, exitUsage, "--member"},
		{"--pool with two pairs", []string{"--asset", assetAcct + role, "--asset", assetAcct + role, "--pool", "p", "--member", proxyAcct + role}, exitUsage, "one --asset"},
		{"--pool and --proxy", []string{"--asset", assetAcct + role, "--proxy", proxyAcct + role, "--pool", "p", "--member", proxyAcct + role}, exitUsage, "no --proxy"},
		{"a member IAM does not have", []string{"--asset", assetAcct + role, "--pool", "p", "--member", proxyAcct + role, "--member", proxyAcct + "nope"}, exitConflict, "proxy_pool.members[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.run(append([]string{"mappings", "set", "zz"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q: %s", r.code, tc.code, tc.want, r.stderr)
			}
		})
	}
}

// FuzzProxyFlag: whatever --proxy holds, an accepted pair is valid, its
// proxy role is the pool's first member, and the broker's codec reads what
// irsactl sends back as the same pair.
func FuzzProxyFlag(f *testing.F) {
	f.Add(proxyAcct + "a")
	f.Add(`{"name": "p", "members": ["` + proxyAcct + `a", "` + proxyAcct + `b"]}`)
	f.Add(`{"members": ["` + proxyAcct + `a"], "elastic": {"template_role_arn": "` + proxyAcct + `t", "path": "/p/", "permissions_boundary_arn": "arn:aws:iam::946429944765:policy/b", "max_members": 3}}`)
	f.Add(`{"name": "p", "members": []}`)
	f.Add(`{"menbers": []}`)
	f.Add(` {"members": ["x"]} trailing`)
	f.Fuzz(func(t *testing.T, proxy string) {
		p, err := proxyFlag(assetAcct+"asset", proxy, true)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			if strings.HasPrefix(strings.TrimSpace(proxy), "{") {
				t.Fatalf("accepted an invalid pool %q: %v", proxy, err)
			}
			return // a plain ARN is validated with the mapping
		}
		if p.ProxyIAMRoleARN != p.ProxyMembers()[0] {
			t.Fatalf("%q: proxy role %s is not the first member %v", proxy, p.ProxyIAMRoleARN, p.ProxyMembers())
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := model.DecodePair(b)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("%q: the broker reads %s as %+v (%v), want %+v", proxy, b, back, err, p)
		}
	})
}
