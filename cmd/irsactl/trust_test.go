package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
)

// addProxyRole creates another proxy role like the seeded one: the same
// trust policy (with no subject) and permission to assume its asset role.
func addProxyRole(t *testing.T, st *devstack.Stack, like, name string) string {
	t.Helper()
	doc, err := st.Sim.TrustPolicy(devstack.EKSAccount, like)
	if err != nil {
		t.Fatal(err)
	}
	arn, err := st.Sim.CreateRole(devstack.EKSAccount, name, "/", doc)
	if err != nil {
		t.Fatal(err)
	}
	perm := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::%s:role/%s"}]}`, devstack.AssetsAccount, like)
	if err := st.Sim.PutRolePolicy(devstack.EKSAccount, name, "assume-asset-role", perm); err != nil {
		t.Fatal(err)
	}
	return arn
}

// poolStack is a dev stack whose update org is mapped to a pool of three
// members (set through irsactl), with runs of bob and alice mapped.
func poolStack(t *testing.T) *cli {
	c := newCLI(t, devstack.Options{})
	const role = "acme-update-bucket-role"
	addProxyRole(t, c.st, role, role+"-2")
	addProxyRole(t, c.st, role, role+"-3")
	c.golden("mappings-set-pool", c.ok("mappings", "set", "irsa-iamrole-update-bucket", "--asset", assetAcct+role,
		"--pool", "update", "--member", proxyAcct+role, "--member", proxyAcct+role+"-2", "--member", proxyAcct+role+"-3"))
	c.env[envToken] = "bob-token"
	for _, run := range []string{"run-a", "run-b", "run-c"} {
		c.ok("map", "--run", run)
	}
	c.env[envToken] = "alice-token"
	c.ok("map", "--run", "run1")
	c.env[envToken] = "admin-token"
	return c
}

func TestTrust(t *testing.T) {
	c := poolStack(t)
	c.golden("trust", c.ok("trust"))
	c.golden("trust-subjects", c.ok("trust", "--subjects"))
	c.golden("trust-get", c.ok("trust", "get", "acme-update-bucket-role-3"))
	if by := c.ok("trust", "get", "update"); by != c.ok("trust", "get", proxyAcct+"acme-update-bucket-role") {
		t.Errorf("trust get by pool name and by member ARN differ")
	}
	var st broker.TrustState
	if err := json.Unmarshal([]byte(c.ok("trust", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	var pool broker.PoolState
	if err := json.Unmarshal([]byte(c.ok("trust", "get", "update", "-o", "json")), &pool); err != nil {
		t.Fatal(err)
	}
	if len(st.Pools) != 3 || pool.Name != "update" || len(pool.Members) != 3 || pool.Subjects != 3 || pool.Members[0].Subjects[0].Runs[0] != "run-a" {
		t.Errorf("trust -o json: %+v; get: %+v", st, pool)
	}
	if y := c.ok("trust", "-o", "yaml"); !strings.Contains(y, "  name: update\n") || !strings.Contains(y, "fill_ratio:") {
		t.Errorf("trust -o yaml:\n%s", y)
	}
	if r := c.run("trust", "get", "nope"); r.code != exitNotFound || !strings.Contains(r.stderr, `"nope"`) {
		t.Errorf("trust get nope: exit %d: %s", r.code, r.stderr)
	}
	c.env[envToken] = "bob-token"
	if r := c.run("trust"); r.code != exitForbidden {
		t.Errorf("a non-admin read trust: exit %d: %s", r.code, r.stderr)
	}
}
