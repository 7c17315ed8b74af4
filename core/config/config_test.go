package config

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the README configuration table")

func newServe(t *testing.T, args []string, env map[string]string) (Serve, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var c Serve
	c.Register(fs)
	err := Parse(fs, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return c, err
}

func TestEnvFillsUnsetFlags(t *testing.T) {
	c, err := newServe(t, []string{"--addr", ":7000"}, map[string]string{
		"IRSA_ADDR":               ":9999", // the flag wins
		"IRSA_IDENTITY_CACHE_TTL": "5s",
		"IRSA_LEGACY_SUBJECTS":    "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" || c.IdentityCacheTTL != 5*time.Second || !c.LegacySubjects {
		t.Fatalf("got %+v", c)
	}
	if _, err := newServe(t, nil, map[string]string{"IRSA_IDENTITY_CACHE_TTL": "soon"}); err == nil || !strings.Contains(err.Error(), "IRSA_IDENTITY_CACHE_TTL") {
		t.Fatalf("bad env value: err = %v", err)
	}
}

func TestPluginEnvIsAList(t *testing.T) {
	c, err := newServe(t, []string{"--plugin-env", "DOMINO_API_KEY", "--plugin-env", " A, B ,"}, nil)
	if err != nil || !slices.Equal(c.PluginEnv, []string{"DOMINO_API_KEY", "A", "B"}) {
		t.Fatalf("flags: %q, %v", c.PluginEnv, err)
	}
	c, err = newServe(t, nil, map[string]string{"IRSA_PLUGIN_ENV": "A,B", "IRSA_PLUGIN_DIR": "/run/irsa/plugins"})
	if err != nil || !slices.Equal(c.PluginEnv, []string{"A", "B"}) || c.PluginDir != "/run/irsa/plugins" {
		t.Fatalf("env: %q %q, %v", c.PluginEnv, c.PluginDir, err)
	}
}

func TestValidate(t *testing.T) {
	c, _ := newServe(t, nil, nil)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "--oidc-provider") || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("defaults must ask for the OIDC provider and TLS: %v", err)
	}
	c, _ = newServe(t, []string{"--oidc-provider", "oidc.eks.us-west-2.amazonaws.com/id/ABC", "--insecure-http"}, nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.OIDCProvider = "https://x"
	if err := c.Validate(); err == nil {
		t.Fatal("scheme in --oidc-provider accepted")
	}
}

// TestREADMETable keeps the README's configuration table equal to the flags.
func TestREADMETable(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var c Serve
	c.Register(fs)
	table := MarkdownTable(fs)
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "<!-- config-table -->\n")
	end := strings.Index(readme, "<!-- /config-table -->")
	if start < 0 || end < start {
		t.Fatal("README lacks the config-table markers")
	}
	start += len("<!-- config-table -->\n")
	if readme[start:end] == table {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:start]+table+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("README configuration table is stale; run go test ./core/config -update\nwant:\n%s", table)
}
