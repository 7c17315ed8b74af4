package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseIdentityProviders(t *testing.T) {
	ps, err := ParseIdentityProviders([]byte(`providers:
  - plugin: domino
    headers: [X-Domino-Api-Key]
    config_file: domino.yaml
  - name: ci
    plugin: ./plugins/CI Tokens.bin
    sha256: abc
    env: [CI_URL]
    config: {issuer: "https://ci.example.com", audiences: [irsa]}
  - plugin: static
    config: |
      users: []
`), "/etc/irsa")
	if err != nil {
		t.Fatal(err)
	}
	want := []IdentityProvider{
		{Name: "domino", Plugin: "domino", Headers: []string{"X-Domino-Api-Key"}, ConfigFile: "/etc/irsa/domino.yaml"},
		{Name: "ci", Plugin: "/etc/irsa/plugins/CI Tokens.bin", SHA256: "abc", Env: []string{"CI_URL"},
			Config: []byte(`{"audiences":["irsa"],"issuer":"https://ci.example.com"}`)},
		{Name: "static", Plugin: "static", Config: []byte("users: []\n")},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("got  %+v\nwant %+v", ps, want)
	}
}

func TestParseIdentityProvidersRefuses(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"empty":           {"providers: []\n", "at least one"},
		"no plugin":       {"providers: [{name: a}]\n", "providers[0]: plugin is required"},
		"unknown key":     {"providers: [{plugin: domino, cofig: {}}]\n", "cofig"},
		"both configs":    {"providers: [{plugin: oidc, config: {a: 1}, config_file: x.yaml}]\n", "not both"},
		"pinned built-in": {"providers: [{plugin: domino, sha256: abc}]\n", "sha256 pins a binary"},
	} {
		if _, err := ParseIdentityProviders([]byte(c.yaml), "/etc"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestIdentityProvidersForms(t *testing.T) {
	// The single-provider flags are a list of one, named after the plugin.
	c := Defaults()
	c.IdentityPlugin, c.IdentityPluginSHA256, c.IdentityConfig = "/opt/My_Plugin.v2", "ff", "/etc/p.yaml"
	ps, err := c.IdentityProviders()
	if err != nil || !reflect.DeepEqual(ps, []IdentityProvider{{Name: "my_plugin", Plugin: "/opt/My_Plugin.v2", SHA256: "ff", ConfigFile: "/etc/p.yaml"}}) {
		t.Fatalf("single form = %+v, %v", ps, err)
	}
	// The file form replaces them; setting both is refused.
	path := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(path, []byte("providers: [{plugin: domino}, {plugin: oidc, config_file: oidc.yaml}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = Defaults()
	c.OIDCProvider, c.InsecureHTTP = "oidc.example.com/id/X", true
	c.IdentityProvidersFile = path
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ps, err = c.IdentityProviders()
	if err != nil || len(ps) != 2 || ps[1].Name != "oidc" || ps[1].ConfigFile != filepath.Join(filepath.Dir(path), "oidc.yaml") {
		t.Fatalf("file form = %+v, %v", ps, err)
	}
	c.IdentityConfig = "/etc/domino.yaml"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--identity-providers replaces") {
		t.Fatalf("both forms: Validate = %v", err)
	}
}

func TestDefaultProviderName(t *testing.T) {
	for in, want := range map[string]string{"domino": "domino", "/x/identity-plugin": "identity-plugin", "/x/A B.exe": "a-b", "/x/...": "default"} {
		if got := DefaultProviderName(in); got != want {
			t.Errorf("DefaultProviderName(%q) = %q, want %q", in, got, want)
		}
	}
}
