package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/hashicorp/go-hclog"
	"sigs.k8s.io/yaml"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Name is the provider's registered name.
const Name = "oidc"

// Provider verifies JWTs against an OIDC issuer's keys.
type Provider struct {
	log hclog.Logger
	now func() time.Time

	mu    sync.Mutex
	state *state
}

var _ sdk.Provider = (*Provider)(nil)

// state is one configuration; Configure swaps it whole.
type state struct {
	cfg      Config
	client   *http.Client
	failures *atomic.Int64 // failed requests to the issuer (transport errors, non-2xx)

	mu       sync.Mutex
	verifier *gooidc.IDTokenVerifier // nil until discovery succeeds
}

// Option tunes New.
type Option func(*Provider)

// WithClock sets the clock used for exp and nbf (tests).
func WithClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// New returns an unconfigured provider (log may be nil).
func New(log hclog.Logger, opts ...Option) *Provider {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	p := &Provider{log: log, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Info implements sdk.Provider.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: Name, Version: "1", Capabilities: []string{"bearer", "jwt"}}, nil
}

// Configure implements sdk.Provider. Discovery happens at the first
// Authenticate (and is retried while the issuer is unreachable), so the
// broker can start before its issuer.
func (p *Provider) Configure(_ context.Context, raw []byte) error {
	var c Config
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return fmt.Errorf("%w: oidc: %v", sdk.ErrInvalidConfig, err)
	}
	c, err := c.withDefaults()
	if err != nil {
		return fmt.Errorf("%w: oidc: %w", sdk.ErrInvalidConfig, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("%w: oidc: ca_file: %w", sdk.ErrInvalidConfig, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: oidc: ca_file: %s holds no PEM certificate", sdk.ErrInvalidConfig, c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	st := &state{cfg: c, failures: new(atomic.Int64)}
	st.client = &http.Client{Timeout: time.Duration(c.Timeout), Transport: &countingTransport{next: tr, failures: st.failures}}
	p.mu.Lock()
	p.state = st
	p.mu.Unlock()
	p.log.Info("configured", "issuer", c.Issuer, "audiences", c.Audiences)
	return nil
}

// countingTransport counts failed requests to the issuer, so that a
// verification failure caused by an unreachable JWKS is told apart from a bad token.
type countingTransport struct {
	next     http.RoundTripper
	failures *atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil || resp.StatusCode >= 300 {
		t.failures.Add(1)
	}
	return resp, err
}

func (st *state) verifierFor(ctx context.Context, now func() time.Time) (*gooidc.IDTokenVerifier, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.verifier != nil {
		return st.verifier, nil
	}
	vc := &gooidc.Config{
		SkipClientIDCheck:    true, // audiences are checked below, against a list
		SkipExpiryCheck:      true, // exp and nbf are checked below, with the configured skew
		SupportedSigningAlgs: st.cfg.SigningAlgs,
		Now:                  now,
	}
	// The key set keeps this context for its refreshes; it must outlive the call.
	keyCtx := gooidc.ClientContext(context.Background(), st.client)
	if st.cfg.JWKSURL != "" {
		st.verifier = gooidc.NewVerifier(st.cfg.Issuer, gooidc.NewRemoteKeySet(keyCtx, st.cfg.JWKSURL), vc)
		return st.verifier, nil
	}
	dctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, st.client), time.Duration(st.cfg.Timeout))
	defer cancel()
	prov, err := gooidc.NewProvider(dctx, st.cfg.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("%w: oidc: discovery: %v", sdk.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("%w: oidc: discovery at %s: %v", sdk.ErrUnavailable, st.cfg.Issuer, err)
	}
	st.verifier = prov.Verifier(vc)
	return st.verifier, nil
}

// Authenticate implements sdk.Provider.
func (p *Provider) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if c.Token == "" {
		return sdk.Identity{}, fmt.Errorf("%w: no credentials", sdk.ErrUnauthenticated)
	}
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if st == nil {
		return sdk.Identity{}, fmt.Errorf("%w: oidc: not configured", sdk.ErrUnavailable)
	}
	if strings.Count(c.Token, ".") != 2 {
		return sdk.Identity{}, fmt.Errorf("%w: oidc: not a JWT", sdk.ErrUnauthenticated)
	}
	v, err := st.verifierFor(ctx, p.now)
	if err != nil {
		return sdk.Identity{}, err
	}
	before := st.failures.Load()
	tok, err := v.Verify(ctx, c.Token)
	if err != nil {
		if ctx.Err() != nil || st.failures.Load() != before || strings.Contains(err.Error(), "fetching keys") {
			return sdk.Identity{}, fmt.Errorf("%w: oidc: the issuer's keys could not be fetched: %v", sdk.ErrUnavailable, err)
		}
		p.log.Debug("token rejected", "header", c.Header, "reason", err)
		return sdk.Identity{}, fmt.Errorf("%w: oidc: %v", sdk.ErrUnauthenticated, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return sdk.Identity{}, fmt.Errorf("%w: oidc: claims: %v", sdk.ErrUnauthenticated, err)
	}
	if err := st.checkTimes(p.now(), tok.Expiry, claims); err != nil {
		return sdk.Identity{}, err
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(st.cfg.Audiences, a) }) {
		return sdk.Identity{}, fmt.Errorf("%w: oidc: the token is not for audiences %v", sdk.ErrUnauthenticated, st.cfg.Audiences)
	}
	return st.cfg.Claims.identity(claims, tok.Expiry)
}

func (st *state) checkTimes(now, exp time.Time, claims map[string]any) error {
	skew := time.Duration(st.cfg.ClockSkew)
	if exp.IsZero() {
		return fmt.Errorf("%w: oidc: the token has no exp", sdk.ErrUnauthenticated)
	}
	if now.After(exp.Add(skew)) {
		return fmt.Errorf("%w: oidc: the token expired at %s", sdk.ErrUnauthenticated, exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := claims["nbf"].(float64); ok {
		if t := time.Unix(int64(nbf), 0); now.Add(skew).Before(t) {
			return fmt.Errorf("%w: oidc: the token is not valid before %s", sdk.ErrUnauthenticated, t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// identity maps verified claims to an identity (pure; table-tested).
func (cl Claims) identity(claims map[string]any, exp time.Time) (sdk.Identity, error) {
	id := str(lookup(claims, cl.ID))
	if id == "" {
		return sdk.Identity{}, fmt.Errorf("%w: oidc: the token has no %q claim", sdk.ErrUnauthenticated, cl.ID)
	}
	out := sdk.Identity{
		ID:            id,
		Username:      or(str(lookup(claims, cl.Username)), id),
		Email:         str(lookup(claims, cl.Email)),
		Groups:        strs(lookup(claims, cl.Groups)),
		Organizations: []string{},
		Expiry:        exp,
	}
	for _, v := range strs(lookup(claims, cl.Organizations.Claim)) {
		if org, ok := strings.CutPrefix(v, cl.Organizations.Prefix); ok && org != "" {
			out.Organizations = append(out.Organizations, org)
		}
	}
	if cl.Admin.Claim != "" {
		switch v := lookup(claims, cl.Admin.Claim).(type) {
		case bool:
			out.Admin = v && cl.Admin.Value == ""
		case string:
			out.Admin = cl.Admin.Value != "" && v == cl.Admin.Value
		case []any:
			out.Admin = cl.Admin.Value != "" && slices.Contains(strs(v), cl.Admin.Value)
		}
	}
	return out, nil
}

// lookup follows a dotted path into nested claims ("realm_access.roles").
// A claim whose own name contains dots is found first.
func lookup(claims map[string]any, path string) any {
	if v, ok := claims[path]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// strs reads a claim that is a list of strings or a single string.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
