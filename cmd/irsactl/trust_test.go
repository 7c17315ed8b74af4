package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// poolStack is a dev stack whose update org is mapped to a pool of three
// members (set through irsactl), with runs of bob and alice mapped.
func poolStack(t *testing.T) *cli {
	c := newCLI(t, devstack.Options{})
	const role = "acme-update-bucket-role"
	devstacktest.AddProxyRole(t, c.st, role, "/", role+"-2")
	devstacktest.AddProxyRole(t, c.st, role, "/", role+"-3")
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
