package wire_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// TestDecisionLogFileAndRingOff: --decision-log=FILE appends one JSON line
// per decision in OPA's shape (the caller's token nowhere), and
// --decision-ring=0 turns GET /v2/decisions off (404).
func TestDecisionLogFileAndRingOff(t *testing.T) {
	file := filepath.Join(t.TempDir(), "decisions.jsonl")
	st := devstacktest.Start(t, devstack.Options{Empty: true})
	brokerURL := devstacktest.Broker(t, st, func(cfg *config.Serve) { cfg.DecisionLog, cfg.DecisionRing = file, 0 })
	do := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, brokerURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("/v2/grants", "alice-token"); code != http.StatusOK {
		t.Fatalf("grants: %d", code)
	}
	if code := do("/v2/decisions", "admin-token"); code != http.StatusNotFound {
		t.Errorf("GET /v2/decisions with --decision-ring=0: %d, want 404", code)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || strings.Contains(string(data), "alice-token") || strings.Contains(string(data), "admin-token") {
		t.Fatalf("decision log:\n%s", data)
	}
	var ev policy.DecisionEvent
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil || ev.Path != policy.GrantsPath || ev.Input.Identity.Username != "alice" || ev.Labels["id"] == "" || ev.Labels["version"] == "" {
		t.Errorf("first line %s: %v", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Path != policy.AllowPath || ev.Result != true {
		t.Errorf("second line %s: %v", lines[1], err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("decision log mode: %v %v", st.Mode(), err)
	}
}
