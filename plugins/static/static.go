package static

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"sigs.k8s.io/yaml"

	"github.com/irsa-broker/irsa-broker/internal/filewatch"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Name is the provider's registered name.
const Name = "static"

// User is one entry of the users file.
type User struct {
	Token         string            `json:"token,omitempty"`
	TokenSHA256   string            `json:"token_sha256,omitempty"`
	ID            string            `json:"id"`
	Username      string            `json:"username"`
	Email         string            `json:"email,omitempty"`
	Admin         bool              `json:"admin"`
	Organizations []string          `json:"organizations"`
	Groups        []string          `json:"groups,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
}

// File is the users file:
//
//	users:
//	  - token: alice-token          # or token_sha256: <hex of the token>
//	    id: 6441e3e0f5e0c93c5b6e4f01
//	    username: alice
//	    admin: false
//	    organizations: [irsa-iamrole-list-bucket]
type File struct {
	Users []User `json:"users"`
}

// Config is the provider configuration handed to Configure: either a path to a
// users file or the users inline.
type Config struct {
	UsersFile string `json:"users_file,omitempty"`
	Users     []User `json:"users,omitempty"`
	// Watch reloads users_file when it changes (default true).
	Watch *bool `json:"watch,omitempty"`
}

// Provider authenticates callers against a fixed list of users.
type Provider struct {
	log hclog.Logger

	mu    sync.RWMutex
	users map[[32]byte]User // by SHA-256 of the token
	path  string

	watchMu   sync.Mutex
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

var _ sdk.Provider = (*Provider)(nil)

// Option tunes New.
type Option func(*Provider)

// WithLogger sets the logger (reloads and their failures are logged).
func WithLogger(log hclog.Logger) Option { return func(p *Provider) { p.log = log } }

// New returns an unconfigured provider; Configure or Load gives it users.
func New(opts ...Option) *Provider {
	p := &Provider{log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Info implements sdk.Provider.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: Name, Version: "1", Capabilities: []string{"bearer", "api-key"}}, nil
}

// Configure implements sdk.Provider. The config may be a Config (users_file or
// users) or directly a users File. A users_file is watched and reloaded when
// it changes, unless watch is false; Close stops the watch.
func (p *Provider) Configure(_ context.Context, raw []byte) error {
	var c Config
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return fmt.Errorf("%w: static: %v", sdk.ErrInvalidConfig, err)
	}
	if c.UsersFile != "" && c.Users != nil {
		return fmt.Errorf("%w: static: set users_file or users, not both", sdk.ErrInvalidConfig)
	}
	if c.UsersFile == "" && c.Users == nil {
		return fmt.Errorf("%w: static: users_file or users is required", sdk.ErrInvalidConfig)
	}
	if c.UsersFile == "" {
		p.stopWatching()
		return p.set(File{Users: c.Users}, "")
	}
	// The watcher records the file before it is loaded, so an edit in
	// between is reloaded too.
	var w *filewatch.Watcher
	if c.Watch == nil || *c.Watch {
		var err error
		if w, err = p.watcher(c.UsersFile); err != nil {
			return err
		}
	}
	if err := p.Load(c.UsersFile); err != nil {
		return err
	}
	p.stopWatching()
	if w != nil {
		p.startWatching(w)
	}
	return nil
}

// Load reads a users file and remembers its path for Reload.
func (p *Provider) Load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: static: %v", sdk.ErrInvalidConfig, err)
	}
	f, err := Parse(b)
	if err != nil {
		return fmt.Errorf("%w: static: %s: %v", sdk.ErrInvalidConfig, path, err)
	}
	return p.set(f, path)
}

// Reload re-reads the file given to Load; on error the previous users stay.
func (p *Provider) Reload() error {
	p.mu.RLock()
	path := p.path
	p.mu.RUnlock()
	if path == "" {
		return nil
	}
	return p.Load(path)
}

// Path is the users file in use ("" when configured inline).
func (p *Provider) Path() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.path
}

// Parse decodes and validates a users file. Errors name the offending entry.
func Parse(b []byte) (File, error) {
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return File{}, err
	}
	return f, nil
}

func (p *Provider) set(f File, path string) error {
	users := make(map[[32]byte]User, len(f.Users))
	for i, u := range f.Users {
		key, err := tokenKey(u)
		if err != nil {
			return fmt.Errorf("%w: static: users[%d]: %v", sdk.ErrInvalidConfig, i, err)
		}
		if u.ID == "" || u.Username == "" {
			return fmt.Errorf("%w: static: users[%d]: id and username are required", sdk.ErrInvalidConfig, i)
		}
		if _, dup := users[key]; dup {
			return fmt.Errorf("%w: static: users[%d] (%s): token used twice", sdk.ErrInvalidConfig, i, u.Username)
		}
		users[key] = u
	}
	p.mu.Lock()
	p.users, p.path = users, path
	p.mu.Unlock()
	return nil
}

func tokenKey(u User) ([32]byte, error) {
	var key [32]byte
	switch {
	case u.Token != "" && u.TokenSHA256 != "":
		return key, fmt.Errorf("set token or token_sha256, not both")
	case u.Token != "":
		return sha256.Sum256([]byte(u.Token)), nil
	case u.TokenSHA256 != "":
		b, err := hex.DecodeString(strings.TrimSpace(u.TokenSHA256))
		if err != nil || len(b) != 32 {
			return key, fmt.Errorf("token_sha256 must be 64 hex digits")
		}
		copy(key[:], b)
		return key, nil
	default:
		return key, fmt.Errorf("token or token_sha256 is required")
	}
}

// Authenticate implements sdk.Provider.
func (p *Provider) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if c.Token == "" {
		return sdk.Identity{}, fmt.Errorf("%w: no credentials", sdk.ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(c.Token))
	p.mu.RLock()
	defer p.mu.RUnlock()
	// The map is keyed by the token's hash, so a lookup reveals nothing about the token.
	found, ok := p.users[sum]
	if !ok {
		return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
	}
	return sdk.Identity{
		ID:            found.ID,
		Username:      found.Username,
		Email:         found.Email,
		Organizations: append([]string(nil), found.Organizations...),
		Groups:        append([]string(nil), found.Groups...),
		Admin:         found.Admin,
		Attributes:    maps.Clone(found.Attributes),
	}, nil
}
