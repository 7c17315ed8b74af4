// Command identity-plugin is a minimal third-party identity provider for
// irsa-broker. It is a Go module of its own that requires only the SDK module
// (github.com/irsa-broker/irsa-broker/plugins/sdk), hclog and a YAML decoder,
// as an integrator's plugin would; build it with `go build .` in this folder
// and start the broker with `--identity-plugin /path/to/identity-plugin`.
// See README.md.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"go.yaml.in/yaml/v3"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// user is one entry of the configuration.
type user struct {
	Token         string   `yaml:"token"`
	ID            string   `yaml:"id"`
	Username      string   `yaml:"username"`
	Organizations []string `yaml:"organizations"`
	Admin         bool     `yaml:"admin"`
}

// config is the YAML the broker hands over (--identity-config).
type config struct {
	Users []user `yaml:"users"`
}

// defaultConfig is used when the broker passes no configuration at all.
var defaultConfig = config{Users: []user{{Token: "demo-token", ID: "demo-1", Username: "demo", Organizations: []string{"demo-org"}}}}

type provider struct {
	log   hclog.Logger
	mu    sync.RWMutex
	users []user
}

var _ sdk.Provider = (*provider)(nil)

func (p *provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "example", Version: "1.0.0", Capabilities: []string{"bearer", "api-key"}}, nil
}

func (p *provider) Configure(_ context.Context, raw []byte) error {
	cfg := defaultConfig
	if len(bytes.TrimSpace(raw)) > 0 {
		cfg = config{}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true) // a misspelt key is an error, not a silent default
		if err := dec.Decode(&cfg); err != nil {
			return fmt.Errorf("%w: %v", sdk.ErrInvalidConfig, err)
		}
	}
	for i, u := range cfg.Users {
		if u.Token == "" || u.ID == "" || u.Username == "" {
			// Name the field, never print the token.
			return fmt.Errorf("%w: users[%d]: token, id and username are required", sdk.ErrInvalidConfig, i)
		}
	}
	p.mu.Lock()
	p.users = cfg.Users
	p.mu.Unlock()
	p.log.Info("configured", "users", len(cfg.Users))
	return nil
}

func (p *provider) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if c.Token == "" {
		return sdk.Identity{}, fmt.Errorf("%w: no credentials", sdk.ErrUnauthenticated)
	}
	got := sha256.Sum256([]byte(c.Token))
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, u := range p.users {
		want := sha256.Sum256([]byte(u.Token))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return sdk.Identity{
				ID: u.ID, Username: u.Username, Admin: u.Admin,
				Organizations: append([]string{}, u.Organizations...),
			}, nil
		}
	}
	p.log.Debug("rejected a credential", "header", c.Header) // the header name, never the token
	return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
}

func main() {
	log := sdk.NewLogger("example-identity-plugin")
	sdk.Serve(&provider{log: log})
}
