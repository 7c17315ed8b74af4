package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// TestStaticPoolEndToEnd: an org mapped to a pool of three proxy roles maps
// more runs than one trust policy holds; each run's config names the member
// that holds its subject, and the SDK's own chain reaches the asset role
// through a member other than the first. /v2/trust shows the placement.
func TestStaticPoolEndToEnd(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	const role = "acme-update-bucket-role"
	members := []string{"arn:aws:iam::" + devstack.EKSAccount + ":role/" + role,
		devstacktest.AddProxyRole(t, st, role, "/", role+"-2"), devstacktest.AddProxyRole(t, st, role, "/", role+"-3")}
	asset := "arn:aws:iam::" + devstack.AssetsAccount + ":role/" + role
	body := fmt.Sprintf(`{"role_pairs":[{"iam_role_arn":%q,"proxy_pool":{"name":"update","members":["%s"]}}]}`, asset, strings.Join(members, `","`))
	if r := call(t, st, "PUT", "/v2/mappings/irsa-iamrole-update-bucket", admin, body); r.status != 200 {
		t.Fatalf("put pool = %d %s", r.status, r.body)
	}
	if r := call(t, st, "GET", "/role_mappings", admin, ""); !strings.Contains(r.body, `"proxy_pool":{"name":"update"`) ||
		!strings.Contains(r.body, `"irsa-iamrole-list-bucket":{"iam_role_arn":"arn:aws:iam::524112250363:role/acme-list-bucket-role","proxy_iam_role_arn":"arn:aws:iam::946429944765:role/acme-list-bucket-role","update_iam_role_trust_policy":true}`) {
		t.Fatalf("role_mappings: %s", r.body)
	}

	const runs = 80 // one trust policy of 2,048 characters holds about 35
	configs := make([]string, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, fmt.Sprintf(`{"run_id":"pool-%02d"}`, i))
			if r.status != 200 {
				t.Errorf("map pool-%02d = %d %s", i, r.status, r.body)
			}
			configs[i] = r.body
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	used := map[string]int{}
	sample := -1
	for i, cfg := range configs {
		sub := fmt.Sprintf("system:serviceaccount:domino-compute:run-pool-%02d", i)
		var named string
		for _, m := range members {
			if strings.Contains(cfg, "role_arn="+m+"\n") {
				named = m
			}
		}
		name := named[strings.LastIndex(named, "/")+1:]
		if !strings.Contains(subjectsOf(t, st, name), `"`+sub+`"`) {
			t.Fatalf("run pool-%02d: config names %s, whose trust policy lacks %s", i, named, sub)
		}
		for _, m := range members {
			if n := m[strings.LastIndex(m, "/")+1:]; n != name && strings.Contains(subjectsOf(t, st, n), `"`+sub+`"`) {
				t.Fatalf("%s is on %s and %s", sub, name, n)
			}
		}
		used[named]++
		if named != members[0] && sample < 0 {
			sample = i
		}
	}
	if len(used) < 3 || sample < 0 {
		t.Fatalf("members used: %v", used)
	}

	// A run placed on a later member, through the SDK's own chain.
	dir := t.TempDir()
	tok := call(t, st, "GET", fmt.Sprintf("/dev/workload-token?run_id=pool-%02d", sample), "", "")
	tokenFile, cfgFile := filepath.Join(dir, "token"), filepath.Join(dir, "config")
	os.WriteFile(tokenFile, []byte(tok.body), 0o600)
	os.WriteFile(cfgFile, []byte(strings.ReplaceAll(configs[sample], "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", tokenFile)), 0o600)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ENDPOINT_URL_STS", st.AWSURL)
	t.Setenv("AWS_REGION", devstack.Region)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedConfigProfile(role))
	if err != nil {
		t.Fatal(err)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity through the chain: %v", err)
	}
	if want := "arn:aws:sts::" + devstack.AssetsAccount + ":assumed-role/" + role + "/"; !strings.HasPrefix(*id.Arn, want) {
		t.Fatalf("caller = %s, want %s…", *id.Arn, want)
	}

	// Mapping a run again keeps it where it is.
	if r := call(t, st, "POST", "/map_iam_roles_to_pod_sa", bob, fmt.Sprintf(`{"run_id":"pool-%02d"}`, sample)); r.body != configs[sample] {
		t.Fatalf("re-map moved the run:\n%s\nwas\n%s", r.body, configs[sample])
	}

	// /v2/trust: admins only; the pool, its members and the runs.
	if r := call(t, st, "GET", "/v2/trust", bob, ""); r.status != 403 {
		t.Fatalf("non-admin /v2/trust = %d", r.status)
	}
	r := call(t, st, "GET", "/v2/trust", admin, "")
	var ts broker.TrustState
	if err := json.Unmarshal([]byte(r.body), &ts); r.status != 200 || err != nil {
		t.Fatalf("/v2/trust = %d %s", r.status, r.body)
	}
	var pool *broker.PoolState
	for i := range ts.Pools {
		if ts.Pools[i].Name == "update" {
			pool = &ts.Pools[i]
		}
	}
	if pool == nil || len(pool.Members) != 3 || pool.Subjects != runs || pool.Orgs[0] != "irsa-iamrole-update-bucket" {
		t.Fatalf("pool: %+v", pool)
	}
	for _, m := range pool.Members {
		if m.Quota != 2048 || m.Size > m.Quota || (len(m.Subjects) > 0 && len(m.Subjects[0].Runs) != 1) {
			t.Fatalf("member: %+v", m)
		}
	}
}
