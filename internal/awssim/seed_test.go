package awssim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/hashicorp/go-hclog"
)

func TestLoadAndApplySeed(t *testing.T) {
	ctx := context.Background()
	seed, err := LoadSeed("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, u := StartTest(t, Options{AllowHTTPIssuers: true})
	if err := sim.ApplySeed(seed); err != nil {
		t.Fatal(err)
	}
	snap := sim.Snapshot()
	if len(snap.Accounts) != 2 || snap.Accounts[1].Quota != 4096 || snap.Accounts[0].Quota != 2048 {
		t.Fatalf("accounts %+v", snap.Accounts)
	}
	proxy := snap.Accounts[1]
	if len(proxy.OIDCProviders) != 1 || proxy.OIDCProviders[0].ARN != "arn:aws:iam::946429944765:oidc-provider/127.0.0.1:8443/cluster" {
		t.Fatalf("providers %+v", proxy.OIDCProviders)
	}
	if len(proxy.Roles) != 1 || len(proxy.Roles[0].InlinePolicies) != 1 || len(proxy.AccessKeys) != 2 ||
		proxy.Roles[0].PermissionsBoundary != "arn:aws:iam::946429944765:policy/irsa/irsa-proxy-boundary" ||
		proxy.Roles[0].Tags["managed-by"] != "irsa-broker" || len(proxy.Policies) != 1 || proxy.RolesQuota != 1000 {
		t.Fatalf("proxy account %+v", proxy)
	}
	var trust map[string]any
	if err := json.Unmarshal([]byte(proxy.Roles[0].TrustPolicy), &trust); err != nil {
		t.Fatalf("YAML trust policy was not converted to JSON: %v", err)
	}
	// The seeded user key works through the SDK and sees the seeded role.
	c := iam.NewFromConfig(awsConfig("AKIAEXAMPLEBROKER001", "broker-secret-example", ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(u) })
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("acme-list-bucket-role")})
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument))
	if !strings.Contains(dec, `"127.0.0.1:8443/cluster:sub":[""]`) {
		t.Fatalf("trust %s", dec)
	}
	if calls := sim.Calls(); calls["GetRole"] != 1 {
		t.Fatalf("calls %v", calls)
	}
	// Applying twice is fine (roles are updated, providers kept).
	if err := sim.ApplySeed(seed); err != nil {
		t.Fatal(err)
	}
}

func TestSeedErrors(t *testing.T) {
	tests := []struct{ name, seed, want string }{
		{"unknown field", "accounts: [{id: '111111111111', bogus: 1}]", "bogus"},
		{"bad account id", "accounts: [{id: '12'}]", "account id"},
		{"bad trust policy", `accounts: [{id: '111111111111', roles: [{name: r, trustPolicy: '{"Statement":[]}'}]}]`, "role r"},
		{"bad duration", `knobs: {latency: {"": soon}}`, "duration"},
		{"http issuer not allowed", `accounts: [{id: '111111111111', oidcProviders: [{url: 'http://x', clientIDs: [a]}]}]`, "provider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seed, err := ParseSeed([]byte(tc.seed))
			if err == nil {
				err = New(Options{}).ApplySeed(seed)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestRunCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	log := hclog.New(&hclog.LoggerOptions{Output: pw, JSONFormat: true, Level: hclog.Info})
	done := make(chan error, 1)
	go func() {
		done <- RunCommand(ctx, []string{"--addr", "127.0.0.1:0", "--account-id", proxyAcct, "--access-key-id", proxyKey,
			"--secret-access-key", proxySecret, "--quota", "3000", "--roles-quota", "5", "--seed", "testdata/seed.yaml", "--allow-http-issuers", "--latency", "1ms"}, log)
		_ = pw.Close()
	}()
	var addr string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err == nil && line["@message"] == "awssim ready" {
			addr, _ = line["url"].(string)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if addr == "" {
		t.Fatalf("no ready line: %v", <-done)
	}
	c := iam.NewFromConfig(awsConfig(proxyKey, proxySecret, ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(addr) })
	sum, err := c.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{})
	if err != nil {
		t.Fatal(err)
	}
	if q := sum.SummaryMap["RolesQuota"]; q != 5 {
		t.Fatalf("roles quota %d, want the flag's 5", q)
	}
	if q := sum.SummaryMap["AssumeRolePolicySizeQuota"]; q != 3000 {
		t.Fatalf("quota %d, want the flag's 3000", q)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunCommand did not stop")
	}
	if err := RunCommand(context.Background(), []string{"--access-key-id", proxyKey}, nil); err == nil {
		t.Fatal("partial credentials must be rejected")
	}
	var e error = RunCommand(context.Background(), []string{"--no-such-flag"}, nil)
	if e == nil || errors.Unwrap(e) == nil {
		t.Fatalf("bad flag: %v", e)
	}
}
