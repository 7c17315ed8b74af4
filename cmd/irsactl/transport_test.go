package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
)

// recorder is a server that records the credential headers of every
// request it gets.
type recorder struct {
	*httptest.Server
	mu  sync.Mutex
	got []string // "METHOD URL Authorization=… X-Domino-Api-Key=…"
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		r.mu.Lock()
		r.got = append(r.got, q.Method+" "+q.URL.String()+" Authorization="+q.Header.Get("Authorization")+" X-Domino-Api-Key="+q.Header.Get("X-Domino-Api-Key"))
		r.mu.Unlock()
		http.Error(w, "recorded", http.StatusTeapot)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// bareCLI runs irsactl with only the given environment (no dev stack).
func bareCLI(t *testing.T, env map[string]string) *cli {
	home := t.TempDir()
	c := &cli{t: t, home: home, env: map[string]string{"PATH": os.Getenv("PATH"), "HOME": home}}
	for k, v := range env {
		c.env[k] = v
	}
	return c
}

// TestRedirectsAreNotFollowed: a broker URL that answers with a redirect
// does not get irsactl's credential sent on to the target. Go's client would
// follow it keeping X-Domino-Api-Key across hosts and Authorization to
// another port of the same host. The error names the target (without the
// credential, which a hostile Location may echo).
func TestRedirectsAreNotFollowed(t *testing.T) {
	const (
		apiKey = "secret-api-key-1"
		token  = "secret-token-1"
	)
	for _, tc := range []struct {
		name   string
		env    map[string]string
		status int
		host   string // of the target: "localhost" is another host than 127.0.0.1
		args   []string
	}{
		{"api key, cross-host 302", map[string]string{envAPIKey: apiKey}, http.StatusFound, "localhost", []string{"mappings", "list"}},
		{"api key, cross-host 307 POST", map[string]string{envAPIKey: apiKey}, http.StatusTemporaryRedirect, "localhost", []string{"map", "--run", "run1"}},
		{"bearer, same host 308", map[string]string{envToken: token}, http.StatusPermanentRedirect, "127.0.0.1", []string{"auth", "whoami"}},
		{"bearer, same host 301 POST", map[string]string{envToken: token}, http.StatusMovedPermanently, "127.0.0.1", []string{"sa", "create", "sa1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newRecorder(t)
			tu, err := url.Parse(target.URL)
			if err != nil {
				t.Fatal(err)
			}
			tu.Host = tc.host + ":" + tu.Port()
			// A Location that echoes the credential must not get it into the error.
			var secret string
			for _, v := range tc.env {
				secret = v
			}
			loc := tu.String() + "/elsewhere?k=" + secret
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, loc, tc.status)
			}))
			t.Cleanup(front.Close)
			env := map[string]string{envBroker: front.URL}
			for k, v := range tc.env {
				env[k] = v
			}
			r := bareCLI(t, env).run(tc.args...)
			// irsactl has exited: a followed redirect would have reached the target by now.
			if got := target.requests(); len(got) != 0 {
				t.Errorf("the redirect was followed with the credential: %q", got)
			}
			if r.code != exitError {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitError, r.stderr)
			}
			for _, s := range []string{fmt.Sprintf("answered HTTP %d", tc.status), "redirecting to " + tu.String() + "/elsewhere?k=[redacted]", "not followed", front.URL} {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
				}
			}
			if strings.Contains(r.stderr, apiKey) || strings.Contains(r.stderr, token) {
				t.Errorf("stderr leaks the credential:\n%s", r.stderr)
			}
		})
	}
}

// TestNoCredentialOverPlainHTTP: over http://, irsactl sends a credential to
// a loopback broker only (the dev stack). A proxy from the environment
// stands in for the network: it sees what would cross it in clear text.
func TestNoCredentialOverPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, broker string
		env          map[string]string
		refused      bool
	}{
		{"api key", "http://irsa-svc.domino-field", map[string]string{envAPIKey: "secret-api-key-2"}, true},
		{"bearer, the map URL of a workload", "http://irsa-svc.domino-field:80/map_iam_roles_to_pod_sa", map[string]string{envToken: "secret-token-2"}, true},
		{"bearer to an address", "http://10.0.0.7:6000", map[string]string{envToken: "secret-token-2"}, true},
		{"no credential", "http://irsa-svc.domino-field", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := newRecorder(t)
			env := map[string]string{envBroker: tc.broker, "HTTP_PROXY": proxy.URL}
			for k, v := range tc.env {
				env[k] = v
			}
			r := bareCLI(t, env).run("auth", "whoami")
			got := proxy.requests()
			if !tc.refused {
				// The barrier: without a credential the request goes out (and the
				// proxy answers 418), so the same set-up would have shown one.
				if len(got) != 1 || !strings.Contains(got[0], "Authorization= X-Domino-Api-Key=") {
					t.Fatalf("proxy saw %q; stderr: %s", got, r.stderr)
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("a credential crossed the network in clear text: %q", got)
			}
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitUsage, r.stderr)
			}
			for _, s := range []string{"plain http://", "unencrypted", "https://"} {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "127.0.0.1": true, "127.3.2.1": true, "::1": true,
		"irsa-svc.domino-field": false, "10.0.0.7": false, "0.0.0.0": false, "localhost.example.com": false,
		"evil-localhost": false, "::ffff:10.0.0.7": false, "": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestEndpointIsTheMapURL: in a workload pod irsactl finds the broker in
// DOMINO_IRSA_ENDPOINT, which is the map URL the sidecar posts to; the API's
// other paths are under the base URL.
func TestEndpointIsTheMapURL(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	c.env[envBroker], c.env[envEndpoint] = "", c.st.BrokerURL+brokerapi.PathMap+"/"
	// The broker's CA as the Mutation mounts it for the sidecar.
	c.env[envCA], c.env[envWorkloadCA] = "", "/etc/ssl/certs/irsa/ca.crt"
	out := c.ok("config")
	if !regexp.MustCompile(`broker +` + regexp.QuoteMeta(c.st.BrokerURL) + ` +env ` + envEndpoint + `\n`).MatchString(out) {
		t.Errorf("config with %s=%s:\n%s", envEndpoint, c.env[envEndpoint], out)
	}
	if !regexp.MustCompile(`ca_file +/etc/ssl/certs/irsa/ca.crt +env ` + envWorkloadCA + `\n`).MatchString(out) {
		t.Errorf("config with %s set:\n%s", envWorkloadCA, out)
	}
	delete(c.env, envWorkloadCA) // the dev stack serves plain HTTP
	if out := c.ok("auth", "whoami", "-o", "json"); !strings.Contains(out, `"admin": true`) {
		t.Errorf("auth whoami: %s", out)
	}
	if out := c.ok("mappings", "list"); !strings.Contains(out, "irsa-iamrole-read-bucket") {
		t.Errorf("mappings list: %s", out)
	}
	c.env[envToken] = "alice-token"
	if out := c.ok("map", "--run", "run1"); !strings.Contains(out, "[profile ") {
		t.Errorf("map: %s", out)
	}
}
