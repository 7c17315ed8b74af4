package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSidecarOnce: the real irsa-sidecar in a pod's shoes — labels from the
// downward API, the user's token from the API proxy, the pod's projected
// token — maps the run through the broker (which binds the request to the
// pod with TokenReview), writes the config, and verifies it with STS against
// the simulator, which checks the token against the API server's JWKS.
func TestSidecarOnce(t *testing.T) {
	pod := runPod(t, computeNS, "sidecar1", "u-alice")
	defer deletePod(t, pod)
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels")
	// As in a pod, the sidecar reads the token where the broker's rendered
	// config points (the mutation and --token-file agree); the sidecar
	// refuses a config naming any other token file.
	tokenFile := env.tokenFile
	cfgFile := filepath.Join(dir, "aws", "config")
	os.MkdirAll(filepath.Dir(cfgFile), 0o755)
	os.WriteFile(labels, []byte(fmt.Sprintf("dominodatalab.com/execution-id=%q\ndominodatalab.com/starting-user-id=\"u-alice\"\n", "sidecar1")), 0o600)
	os.WriteFile(tokenFile, []byte(podToken(t, pod)), 0o600)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/access-token" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "alice-token")
	}))
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.sidecarBin, "once")
	cmd.Env = append(os.Environ(),
		"DOMINO_IRSA_ENDPOINT="+env.main.url, "DOMINO_API_PROXY="+proxy.URL,
		"POD_INFO_PATH="+labels, "AWS_CONFIG_FILE="+cfgFile, "AWS_WEB_IDENTITY_TOKEN_FILE="+tokenFile,
		"AWS_ENDPOINT_URL_STS="+env.simURL, "AWS_REGION=us-east-1", "LOG_FORMAT=json")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("irsa-sidecar once: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "alice-token") {
		t.Fatalf("the sidecar logged the user's token:\n%s", out)
	}
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "[profile src_"+env.roleNames[0]+"]") {
		t.Fatalf("config:\n%s", cfg)
	}
	if !hasSubject(t, 0, subject(computeNS, "run-sidecar1")) {
		t.Fatalf("subject missing: %v", trustSubjects(t, 0))
	}
	if !strings.Contains(string(out), `"verification":"verified"`) {
		t.Fatalf("no verification in the sidecar's log:\n%s", out)
	}
}
