package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// TestV18ShapedBroker: irsactl lists, exports and restores exactly against
// a broker whose legacy GETs answer in the v1.8 shapes
// (--legacy-get-shape=v1.8), where every org is a list; and it reads such
// an answer as an import file.
func TestV18ShapedBroker(t *testing.T) {
	st := devstacktest.Start(t, devstack.Options{Empty: true})
	brokerURL := devstacktest.Broker(t, st, func(cfg *config.Serve) { cfg.LegacyGetShape = "v1.8" })
	st.BrokerURL = brokerURL // the CLI and its golden placeholders use this broker
	home := t.TempDir()
	c := &cli{t: t, st: st, home: home, env: map[string]string{"PATH": os.Getenv("PATH"), "HOME": home, envBroker: brokerURL, envToken: "admin-token"}}

	c.ok("mappings", "set", "one", "--asset", assetAcct+"acme-read-bucket-role", "--proxy", proxyAcct+"acme-read-bucket-role")
	c.ok("mappings", "set", "multi-one", "--multi", "--asset", assetAcct+"acme-list-bucket-role", "--proxy", proxyAcct+"acme-list-bucket-role")
	c.ok("mappings", "set", "two", "--asset", assetAcct+"acme-read-bucket-role", "--proxy", proxyAcct+"acme-read-bucket-role",
		"--asset", assetAcct+"acme-update-bucket-role", "--proxy", proxyAcct+"acme-update-bucket-role")

	// The site's clients see lists everywhere.
	req, _ := http.NewRequest(http.MethodGet, brokerURL+"/role_mappings", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	v18, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(v18), `"one":[{"domino_org":"one"`) {
		t.Fatalf("the broker does not serve the v1.8 shape: %s", v18)
	}

	export := c.ok("mappings", "export")
	var f mappingsFileV2
	if err := json.Unmarshal([]byte(export), &f); err != nil {
		t.Fatal(err)
	}
	multi := map[string]bool{}
	for _, m := range f.Mappings {
		multi[m.Org] = m.Multi
	}
	if multi["one"] || !multi["multi-one"] || len(f.Mappings) != 3 {
		t.Fatalf("export against a v1.8-shaped broker lost which orgs are lists: %s", export)
	}
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.json")
	if err := os.WriteFile(backup, []byte(export), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("mappings", "delete", "one")
	c.ok("mappings", "set", "multi-one", "--asset", assetAcct+"acme-list-bucket-role", "--proxy", proxyAcct+"acme-list-bucket-role")
	c.ok("mappings", "import", backup, "--apply")
	if again := c.ok("mappings", "import", backup); !strings.Contains(again, "0 to add, 0 to change, 0 to delete, 3 unchanged") {
		t.Errorf("restore against a v1.8-shaped broker is not exact:\n%s", again)
	}
	// A v1.8-shaped answer is an import file (dry run): every org a list.
	answer := filepath.Join(dir, "v18.json")
	if err := os.WriteFile(answer, v18, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("mappings", "import", answer); !strings.Contains(out, "0 to add, 1 to change, 0 to delete, 2 unchanged") || !strings.Contains(out, "~ one") {
		t.Errorf("import of a v1.8 answer:\n%s", out)
	}
}
