package wire_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/wire"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/builtin"
)

// fakeDomino answers one API key, "dom-key", as user dora of the read-bucket
// org, and any other credential as Domino does: 200 with isAnonymous.
func fakeDomino(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		known := r.Header.Get(brokerapi.HeaderDominoAPIKey) == "dom-key"
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v4/auth/principal":
			if known {
				fmt.Fprint(w, `{"canonicalId":"dora-id","canonicalName":"dora","isAdmin":false,"isAnonymous":false}`)
				return
			}
			fmt.Fprint(w, `{"isAnonymous":true}`)
		case "/v4/organizations/self":
			if known {
				fmt.Fprint(w, `[{"name":"irsa-iamrole-read-bucket"}]`)
				return
			}
			fmt.Fprint(w, `[]`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// oidcExtra adds a grant that only identities from the corp-oidc provider
// get: the policy sees input.identity.provider.
const oidcExtra = `package irsa.grants

grants contains object.union(pair, {"org": "irsa-iamrole-update-bucket"}) if {
	input.identity.provider == "corp-oidc"
	some pair in data.mappings["irsa-iamrole-update-bucket"]
}
`

// TestSeveralIdentityProviders runs serve's graph with two built-in
// providers as plugin processes, listed in --identity-providers: Domino for
// API keys and OIDC for bearer tokens. Both kinds of caller are served by
// one broker; the policy sees which provider authenticated each; killing the
// OIDC plugin fails only bearer tokens until it is restarted, and the
// metrics name it.
func TestSeveralIdentityProviders(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{})
	domino := fakeDomino(t)
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	if err := os.Mkdir(policies, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(policies, "oidc.rego"), oidcExtra)
	// The OIDC provider takes the dev issuer's tokens (no organization
	// claims: what such a caller gets, it gets from the corp-oidc grant).
	write(t, filepath.Join(dir, "providers.yaml"), `providers:
  - name: domino
    plugin: domino
    headers: [X-Domino-Api-Key]
    config: {host: "`+domino.URL+`"}
  - name: corp-oidc
    plugin: oidc
    headers: [Authorization]
    config_file: oidc.yaml
`)
	write(t, filepath.Join(dir, "oidc.yaml"), `issuer: "`+st.IssuerURL+`"
audiences: [sts.amazonaws.com]
claims: {id: sub}
`)
	cfg := config.Defaults()
	cfg.InsecureHTTP = true
	cfg.Workloads = "caller"
	cfg.OIDCProvider = st.OIDCProvider
	cfg.AWSRegion, cfg.IAMEndpoint = devstack.Region, st.AWSURL
	cfg.IdentityProvidersFile = filepath.Join(dir, "providers.yaml")
	cfg.PolicyDir = policies
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := wire.Build(ctx, cfg, wire.Edges{
		IAMCredentials:  credentials.NewStaticCredentialsProvider(st.AccessKeyID, st.SecretKey, ""),
		Mappings:        st.Mappings,
		ServiceAccounts: &broker.MemoryServiceAccounts{},
		Builtins:        builtin.Names(),
	}, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Run(ctx)
	srv := httptest.NewServer(b.Handler)
	defer srv.Close()

	n := 0
	bearer := func() (string, string) { // a fresh token per call: nothing comes from the identity cache
		n++
		tok, err := st.Issuer.WorkloadToken("irsa-iamrole-list-bucket", "ci-bot", "pod-"+strconv.Itoa(n), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return brokerapi.HeaderAuthorization, "Bearer " + tok
	}
	apiKey := func() (string, string) { return brokerapi.HeaderDominoAPIKey, "dom-key" }
	profiles := func(header, value string) (int, []string) {
		code, body := mapAs(t, srv.URL, header, value)
		var out []string
		for _, line := range strings.Split(body, "\n") {
			if p, ok := strings.CutPrefix(line, "[profile "); ok && !strings.HasPrefix(p, "src_") {
				out = append(out, strings.TrimSuffix(p, "]"))
			}
		}
		slices.Sort(out)
		return code, out
	}

	// Each kind of credential reaches its provider; the policy saw which.
	if code, got := profiles(apiKey()); code != http.StatusOK || !slices.Equal(got, []string{"acme-read-bucket-role"}) {
		t.Fatalf("Domino API key: %d %v", code, got)
	}
	if code, got := profiles(bearer()); code != http.StatusOK || !slices.Equal(got, []string{"acme-update-bucket-role"}) {
		t.Fatalf("OIDC bearer token: %d %v (want the corp-oidc grant)", code, got)
	}
	// A Domino key sent as a bearer token is offered to OIDC only.
	if code, _ := mapAs(t, srv.URL, brokerapi.HeaderAuthorization, "Bearer dom-key"); code != http.StatusUnauthorized {
		t.Fatalf("API key as bearer = %d", code)
	}

	// The OIDC plugin crashes: bearer tokens fail (503), API keys do not.
	pid := pluginPID(t, "oidc")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the killed plugin to be gone", func() bool { return !isChild(pid) })
	h, v := bearer()
	if code, body := mapAs(t, srv.URL, h, v); code != http.StatusServiceUnavailable || !strings.Contains(body, "identity_unavailable") {
		t.Fatalf("bearer token with the OIDC plugin dead = %d %s", code, body)
	}
	if code, got := profiles(apiKey()); code != http.StatusOK || !slices.Equal(got, []string{"acme-read-bucket-role"}) {
		t.Fatalf("Domino API key with the OIDC plugin dead: %d %v", code, got)
	}
	polltest.Until(t, "bearer tokens to be served again", func() bool {
		h, v := bearer()
		code, _ := mapAs(t, srv.URL, h, v)
		return code == http.StatusOK
	})
	restarts := metricValues(t, b, "irsa_identity_plugin_restarts_total")
	if restarts["corp-oidc"] != 1 || restarts["domino"] != 0 {
		t.Fatalf("irsa_identity_plugin_restarts_total by provider = %v", restarts)
	}
	if ok := metricValues(t, b, "irsa_identity_authentications_total"); ok["domino"] == 0 || ok["corp-oidc"] == 0 {
		t.Fatalf("irsa_identity_authentications_total by provider = %v", ok)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mapAs(t *testing.T, url, header, value string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+brokerapi.PathMap, strings.NewReader(`{"run_id":"r1"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// pluginPID finds the child process serving the built-in name.
func pluginPID(t *testing.T, name string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !isChild(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"); len(args) == 3 && args[1] == "plugin" && args[2] == name {
			return pid
		}
	}
	t.Fatalf("no plugin process serves %s", name)
	return 0
}

// isChild reports whether pid is a live (non-zombie) child of this process.
func isChild(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	return len(f) >= 2 && f[0] != "Z" && f[1] == strconv.Itoa(os.Getpid())
}

// metricValues sums a metric family's series by their provider label.
func metricValues(t *testing.T, b *wire.Broker, name string) map[string]float64 {
	t.Helper()
	families, err := b.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "provider" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if len(out) == 0 {
		js, _ := json.Marshal(families)
		t.Fatalf("no %s series with a provider label in %s", name, js)
	}
	return out
}
