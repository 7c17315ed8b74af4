package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// IdentityProvider is one identity provider of the broker's ordered list:
// an entry of the --identity-providers file, or the one provider that
// --identity-plugin, --identity-plugin-sha256 and --identity-config name.
//
//	providers:
//	  - name: domino                       # default: the plugin's name
//	    plugin: domino                     # built in (domino, oidc, static) or a binary's path
//	    headers: [X-Domino-Api-Key]        # only credentials in these headers are offered to it
//	    config_file: /etc/irsa/domino.yaml # watched, re-applied when it changes
//	  - name: ci
//	    plugin: /opt/irsa/plugins/ci-tokens
//	    sha256: 9f86d0…                    # pin of the binary
//	    env: [CI_API_URL]                  # besides --plugin-env
//	    config: {audiences: [irsa]}        # inline, instead of config_file
type IdentityProvider struct {
	Name       string   `json:"name,omitempty"`
	Plugin     string   `json:"plugin"`
	SHA256     string   `json:"sha256,omitempty"`
	ConfigFile string   `json:"config_file,omitempty"`
	Headers    []string `json:"headers,omitempty"`
	Env        []string `json:"env,omitempty"`
	// Config is the inline configuration handed to the provider's Configure
	// (YAML; a mapping is passed as JSON, which is YAML too).
	Config []byte `json:"-"`
}

// identityProvidersFile is the --identity-providers file.
type identityProvidersFile struct {
	Providers []struct {
		IdentityProvider
		Config json.RawMessage `json:"config,omitempty"`
	} `json:"providers"`
}

// IdentityProviders is the ordered list of identity providers: the
// --identity-providers file when it is set, else the one provider of the
// single-provider flags.
func (c *Serve) IdentityProviders() ([]IdentityProvider, error) {
	if c.IdentityProvidersFile == "" {
		return []IdentityProvider{{
			Name: DefaultProviderName(c.IdentityPlugin), Plugin: c.IdentityPlugin,
			SHA256: c.IdentityPluginSHA256, ConfigFile: c.IdentityConfig,
		}}, nil
	}
	b, err := os.ReadFile(c.IdentityProvidersFile)
	if err != nil {
		return nil, fmt.Errorf("--identity-providers: %w", err)
	}
	ps, err := ParseIdentityProviders(b, filepath.Dir(c.IdentityProvidersFile))
	if err != nil {
		return nil, fmt.Errorf("--identity-providers %s: %w", c.IdentityProvidersFile, err)
	}
	return ps, nil
}

// ParseIdentityProviders reads an --identity-providers file. Relative
// paths (a plugin binary, a config file) are relative to dir, the file's
// directory. Names default to DefaultProviderName; their grammar and
// uniqueness are checked where the list is built (core/identity.NewChain).
func ParseIdentityProviders(b []byte, dir string) ([]IdentityProvider, error) {
	var f identityProvidersFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, err
	}
	if len(f.Providers) == 0 {
		return nil, fmt.Errorf("providers: at least one is required")
	}
	out := make([]IdentityProvider, len(f.Providers))
	for i, e := range f.Providers {
		p := e.IdentityProvider
		at := fmt.Sprintf("providers[%d]", i)
		if p.Plugin == "" {
			return nil, fmt.Errorf("%s: plugin is required (domino, oidc, static or the path of a binary)", at)
		}
		if strings.ContainsRune(p.Plugin, '/') {
			p.Plugin = relativeTo(dir, p.Plugin)
		} else if p.SHA256 != "" {
			return nil, fmt.Errorf("%s: sha256 pins a binary given by path, not the built-in %q", at, p.Plugin)
		}
		if p.Name == "" {
			p.Name = DefaultProviderName(p.Plugin)
		}
		raw := bytes.TrimSpace(e.Config)
		if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
			if p.ConfigFile != "" {
				return nil, fmt.Errorf("%s: set config or config_file, not both", at)
			}
			p.Config = raw
			var text string // config: | (a YAML document as a string)
			if raw[0] == '"' && json.Unmarshal(raw, &text) == nil {
				p.Config = []byte(text)
			}
		}
		if p.ConfigFile != "" {
			p.ConfigFile = relativeTo(dir, p.ConfigFile)
		}
		out[i] = p
	}
	return out, nil
}

func relativeTo(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}

var notNameChars = regexp.MustCompile(`[^a-z0-9_-]+`)

// DefaultProviderName names a provider after its plugin: a built-in's name,
// or a binary's base name, lower-cased, without extension, other characters
// replaced by '-' ("default" when nothing is left).
func DefaultProviderName(plugin string) string {
	base := filepath.Base(plugin)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	name := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(base), "-"), "-_")
	if len(name) > 32 {
		name = strings.Trim(name[:32], "-_")
	}
	if name == "" || name == "." {
		return "default"
	}
	return name
}
