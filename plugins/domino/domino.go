package domino

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"sigs.k8s.io/yaml"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Name is the provider's registered name.
const Name = "domino"

// DefaultHost is Domino's in-cluster API front end.
const DefaultHost = "http://nucleus-frontend.domino-platform:80"

// maxBody bounds what is read from Domino (principals and org lists are small).
const maxBody = 1 << 20

// Config is the provider's YAML configuration.
//
//	host: http://nucleus-frontend.domino-platform:80   # default
//	timeout: 5s                                        # per Domino call (default 5s)
//	ca_file: /etc/ssl/domino-ca.pem                    # extra CA for an https host
type Config struct {
	Host    string   `json:"host,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
	CAFile  string   `json:"ca_file,omitempty"`
}

// Duration is a time.Duration written as "5s" in YAML.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"5s\": %v", err)
	}
	*d = Duration(v)
	return nil
}

// Provider authenticates callers against the Domino API.
type Provider struct {
	log hclog.Logger

	mu     sync.RWMutex
	host   string
	client *http.Client
}

var _ sdk.Provider = (*Provider)(nil)

// New returns an unconfigured provider (log may be nil).
func New(log hclog.Logger) *Provider {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Provider{log: log}
}

// Info implements sdk.Provider.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: Name, Version: "1", Capabilities: []string{"bearer", "api-key"}}, nil
}

// Configure implements sdk.Provider; an empty config means the defaults.
func (p *Provider) Configure(_ context.Context, raw []byte) error {
	var c Config
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return fmt.Errorf("%w: domino: %v", sdk.ErrInvalidConfig, err)
	}
	host, client, err := c.build()
	if err != nil {
		return fmt.Errorf("%w: domino: %w", sdk.ErrInvalidConfig, err)
	}
	p.mu.Lock()
	p.host, p.client = host, client
	p.mu.Unlock()
	p.log.Info("configured", "host", host, "timeout", client.Timeout)
	return nil
}

func (c Config) build() (string, *http.Client, error) {
	host := strings.TrimRight(c.Host, "/")
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("host: want http(s)://host[:port], got %q", c.Host)
	}
	timeout := time.Duration(c.Timeout)
	switch {
	case timeout == 0:
		timeout = 5 * time.Second
	case timeout < 0:
		return "", nil, errors.New("timeout: must be positive")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // in-cluster service; never send credentials through a proxy
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return "", nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return "", nil, fmt.Errorf("ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return host, &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// principal is the part of GET /v4/auth/principal used here.
type principal struct {
	CanonicalID   string `json:"canonicalId"`
	CanonicalName string `json:"canonicalName"`
	IsAdmin       bool   `json:"isAdmin"`
	IsAnonymous   bool   `json:"isAnonymous"`
}

type organization struct {
	Name string `json:"name"`
}

// Authenticate implements sdk.Provider: it asks for the principal and the
// organizations at once. Domino answers a bad API key with 200 and
// isAnonymous: true, which is unauthenticated, like 401/403 and a missing id;
// an unreachable Domino, a timeout or a 5xx is unavailable.
func (p *Provider) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if c.Token == "" {
		return sdk.Identity{}, fmt.Errorf("%w: no credentials", sdk.ErrUnauthenticated)
	}
	p.mu.RLock()
	host, client := p.host, p.client
	p.mu.RUnlock()
	if client == nil {
		return sdk.Identity{}, fmt.Errorf("%w: domino: not configured", sdk.ErrUnavailable)
	}
	header, value := sdk.HeaderAuthorization, "Bearer "+c.Token
	if strings.EqualFold(c.Header, sdk.HeaderDominoAPIKey) {
		header, value = sdk.HeaderDominoAPIKey, c.Token
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		orgs    []organization
		orgsErr error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		orgsErr = p.get(ctx, client, host+"/v4/organizations/self", header, value, &orgs)
	}()
	var pr principal
	err := p.get(ctx, client, host+"/v4/auth/principal", header, value, &pr)
	if err == nil && (pr.IsAnonymous || pr.CanonicalID == "") {
		err = fmt.Errorf("%w: domino: the credential maps to no user (anonymous)", sdk.ErrUnauthenticated)
	}
	if err != nil {
		cancel()
		wg.Wait()
		return sdk.Identity{}, err
	}
	wg.Wait()
	if orgsErr != nil {
		return sdk.Identity{}, orgsErr
	}
	names := make([]string, 0, len(orgs))
	for _, o := range orgs {
		if o.Name != "" {
			names = append(names, o.Name)
		}
	}
	return sdk.Identity{ID: pr.CanonicalID, Username: pr.CanonicalName, Admin: pr.IsAdmin, Organizations: names}, nil
}

// get calls Domino and decodes a 200 answer into v. Errors name the path and
// status, never the credential or the body.
func (p *Provider) get(ctx context.Context, client *http.Client, rawURL, header, value string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("%w: domino: %v", sdk.ErrUnavailable, err)
	}
	path := req.URL.Path
	req.Header.Set(header, value)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: domino %s: %w", sdk.ErrUnavailable, path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds nothing secret, but keep the message short
		}
		return fmt.Errorf("%w: domino %s: %v", sdk.ErrUnavailable, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: domino %s: %s", sdk.ErrUnauthenticated, path, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: domino %s: %s", sdk.ErrUnavailable, path, resp.Status)
	case err != nil:
		return fmt.Errorf("%w: domino %s: reading the answer: %v", sdk.ErrUnavailable, path, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: domino %s: unexpected answer: %v", sdk.ErrUnavailable, path, err)
	}
	return nil
}
