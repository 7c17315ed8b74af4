package examples_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// sdkModule is the SDK's module path: what an integrator's go.mod requires.
const sdkModule = "github.com/irsa-broker/irsa-broker/plugins/sdk"

// forbiddenModules are module path prefixes that must not reach a plugin's
// module graph: the broker's own dependencies, and the broker itself.
var forbiddenModules = []string{
	"k8s.io/", "sigs.k8s.io/", // Kubernetes
	"github.com/open-policy-agent/", // OPA
	"github.com/aws/",               // the AWS SDK
	"github.com/irsa-broker/irsa-broker ", "github.com/irsa-broker/irsa-broker/core",
}

// TestIdentityPluginOutOfTree builds examples/identity-plugin the way an
// integrator builds their own plugin: its module copied out of this
// repository, requiring the SDK module (a replace to ../plugins/sdk stands
// in for the published release), with its go.mod and go.sum as they are
// (-mod=readonly). The copy passes its own tests (sdktest), its module
// graph holds no Kubernetes, OPA or AWS module, and the broker runs the
// binary built there as a plugin process and serves a map with it.
func TestIdentityPluginOutOfTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module out of tree")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "identity-plugin")
	copyDir(t, filepath.Join(root, "examples", "identity-plugin"), dir)
	goCmd(t, dir, "mod", "edit", "-replace", sdkModule+"="+filepath.Join(root, "plugins", "sdk"))

	// The graph: the SDK and go-plugin are in it (so the check below sees a
	// real graph), nothing of the broker's world is.
	graph := goCmd(t, dir, "list", "-m", "all")
	t.Logf("go list -m all (out-of-tree example):\n%s", graph)
	for _, want := range []string{sdkModule + " v", "github.com/hashicorp/go-plugin "} {
		if !strings.Contains(graph, want) {
			t.Fatalf("%q is not in the example's module graph:\n%s", want, graph)
		}
	}
	for _, line := range strings.Split(graph, "\n") {
		for _, bad := range forbiddenModules {
			if strings.HasPrefix(line+" ", bad) {
				t.Errorf("the example's module graph contains %s", line)
			}
		}
	}

	goCmd(t, dir, "vet", "./...")
	goCmd(t, dir, "test", "-count=1", "./...")
	bin := filepath.Join(dir, "identity-plugin")
	goCmd(t, dir, "build", "-o", bin, ".")

	// The broker runs that binary as its identity plugin.
	cfg := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(cfg, []byte("users:\n  - {token: t-dana, id: u-dana, username: dana, organizations: [irsa-iamrole-list-bucket]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := devstacktest.Start(t, devstack.Options{IdentityPlugin: bin, IdentityConfig: cfg})
	code, body := mapRun(t, st.BrokerURL, "t-dana", "r1")
	if code != http.StatusOK || !strings.Contains(body, "[profile "+devstack.ExampleRoles["irsa-iamrole-list-bucket"]+"]") {
		t.Fatalf("map with the out-of-tree plugin = %d\n%s", code, body)
	}
	if code, body := mapRun(t, st.BrokerURL, "t-nobody", "r1"); code != http.StatusUnauthorized {
		t.Fatalf("map with an unknown token = %d\n%s", code, body)
	}

	// The same binary next to the built-in Domino provider in one broker:
	// API keys go to Domino, bearer tokens to the integrator's plugin.
	domino := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		known := r.Header.Get(brokerapi.HeaderDominoAPIKey) == "dom-key"
		switch {
		case r.URL.Path == "/v4/auth/principal" && known:
			fmt.Fprint(w, `{"canonicalId":"dora-id","canonicalName":"dora","isAdmin":false,"isAnonymous":false}`)
		case r.URL.Path == "/v4/auth/principal":
			fmt.Fprint(w, `{"isAnonymous":true}`)
		case r.URL.Path == "/v4/organizations/self" && known:
			fmt.Fprint(w, `[{"name":"irsa-iamrole-read-bucket"}]`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer domino.Close()
	providers := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(providers, []byte(`providers:
  - {name: domino, plugin: domino, headers: [X-Domino-Api-Key], config: {host: "`+domino.URL+`"}}
  - {name: example, plugin: `+bin+`, headers: [Authorization], config_file: `+cfg+`}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	both := devstacktest.Start(t, devstack.Options{IdentityProviders: providers})
	if code, body := mapRun(t, both.BrokerURL, "t-dana", "r2"); code != http.StatusOK || !strings.Contains(body, "[profile "+devstack.ExampleRoles["irsa-iamrole-list-bucket"]+"]") {
		t.Fatalf("bearer token through the example plugin beside Domino = %d\n%s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, both.BrokerURL+brokerapi.PathMap, strings.NewReader(`{"run_id":"r3"}`))
	req.Header.Set(brokerapi.HeaderDominoAPIKey, "dom-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "[profile "+devstack.ExampleRoles["irsa-iamrole-read-bucket"]+"]") {
		t.Fatalf("API key through the built-in Domino provider beside the example = %d\n%s", resp.StatusCode, b)
	}
}

func mapRun(t *testing.T, brokerURL, token, run string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, brokerURL+brokerapi.PathMap, strings.NewReader(`{"run_id":"`+run+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(brokerapi.HeaderAuthorization, "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// goCmd runs the go command in dir as an integrator would, outside any
// workspace and without touching go.mod or go.sum, and returns its stdout.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s%s", strings.Join(args, " "), dir, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// copyDir copies the regular files of src (one level: the example is flat).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			t.Fatalf("%s: the example is expected to be one flat folder", filepath.Join(src, e.Name()))
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
