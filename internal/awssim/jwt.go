package awssim

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
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	jwksTTL       = 10 * time.Minute
	jwtLeeway     = 30 * time.Second
	fetchTimeout  = 5 * time.Second
	maxJWKSBytes  = 1 << 20
	maxTokenBytes = 20000
)

var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// keyCache fetches and caches issuers' signing keys (discovery document → jwks_uri).
type keyCache struct {
	client    *http.Client
	allowHTTP bool
	now       func() time.Time

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

type issuerKeys struct {
	mu      sync.Mutex // serializes fetches for one issuer
	keys    []jose.JSONWebKey
	fetched time.Time
}

func newKeyCache(opts Options, now func() time.Time) *keyCache {
	client := opts.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = issuerTLSConfig(opts.IssuerCAs)
		client = &http.Client{Transport: tr, Timeout: fetchTimeout}
	}
	return &keyCache{client: client, allowHTTP: opts.AllowHTTPIssuers, now: now, issuers: map[string]*issuerKeys{}}
}

// issuerTLSConfig trusts the system roots and, in addition, extra (if any). The chain
// is verified by hand because a CertPool cannot be merged with the system pool.
func issuerTLSConfig(extra *x509.CertPool) *tls.Config {
	if extra == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("issuer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			vo := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: inter, Roots: extra}
			_, err := cs.PeerCertificates[0].Verify(vo)
			if err == nil {
				return nil
			}
			vo.Roots = nil // system roots
			if _, err2 := cs.PeerCertificates[0].Verify(vo); err2 == nil {
				return nil
			}
			return fmt.Errorf("issuer certificate not trusted: %w", err)
		},
	}
}

// errKeyFetch marks failures to obtain the issuer's keys.
var errKeyFetch = errors.New("fetching issuer keys")

// keysFor returns the keys to try for kid. A kid missing from the cached set forces one
// refetch (key rotation).
func (c *keyCache) keysFor(ctx context.Context, issuer, kid string) ([]jose.JSONWebKey, error) {
	c.mu.Lock()
	ik, ok := c.issuers[issuer]
	if !ok {
		ik = &issuerKeys{}
		c.issuers[issuer] = ik
	}
	c.mu.Unlock()

	ik.mu.Lock()
	defer ik.mu.Unlock()
	fresh := !ik.fetched.IsZero() && time.Since(ik.fetched) < jwksTTL
	if fresh {
		if found := selectKeys(ik.keys, kid); len(found) > 0 {
			return found, nil
		}
	}
	keys, err := c.fetch(ctx, issuer)
	if err != nil {
		return nil, err
	}
	ik.keys, ik.fetched = keys, time.Now()
	return selectKeys(keys, kid), nil
}

func selectKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

func (c *keyCache) checkScheme(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: bad URL: %w", errKeyFetch, err)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && c.allowHTTP) {
		return nil
	}
	return fmt.Errorf("%w: scheme %q not allowed for %s", errKeyFetch, u.Scheme, raw)
}

func (c *keyCache) fetch(ctx context.Context, issuer string) ([]jose.JSONWebKey, error) {
	if err := c.checkScheme(issuer); err != nil {
		return nil, err
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := c.getJSON(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, err
	}
	if strings.TrimSuffix(disc.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return nil, fmt.Errorf("%w: discovery issuer %q does not match %q", errKeyFetch, disc.Issuer, issuer)
	}
	if err := c.checkScheme(disc.JWKSURI); err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := c.getJSON(ctx, disc.JWKSURI, &set); err != nil {
		return nil, err
	}
	return set.Keys, nil
}

func (c *keyCache) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errKeyFetch, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", errKeyFetch, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: status %d", errKeyFetch, u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(v); err != nil {
		return fmt.Errorf("%w: GET %s: %w", errKeyFetch, u, err)
	}
	return nil
}

// webIdentity is a verified token's relevant content.
type webIdentity struct {
	issuer   string
	subject  string
	audience string // the audience that matched the provider's client ids
	provider *oidcProvider
}

func errInvalidToken(format string, a ...any) *APIError {
	return senderErr(http.StatusBadRequest, "InvalidIdentityToken", format, a...)
}

// verifyWebIdentity checks the token against the OIDC providers of account acct, the
// issuer's keys and the clock. Token contents never appear in messages.
func (s *Server) verifyWebIdentity(ctx context.Context, acct, raw string) (*webIdentity, *APIError) {
	if len(raw) < 4 || len(raw) > maxTokenBytes {
		return nil, errValidation("1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and %d", maxTokenBytes)
	}
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, errInvalidToken("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" {
		return nil, errInvalidToken("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	iss := unverified.Issuer
	s.mu.RLock()
	var prov *oidcProvider
	if a, ok := s.accounts[acct]; ok {
		prov = a.providers["arn:aws:iam::"+acct+":oidc-provider/"+stripScheme(iss)]
	}
	s.mu.RUnlock()
	if prov == nil || prov.url != strings.TrimSuffix(iss, "/") {
		return nil, errInvalidToken("No OpenIDConnect provider found in your account for %s", iss)
	}
	keys, err := s.keys.keysFor(ctx, prov.url, tok.Headers[0].KeyID)
	if err != nil {
		s.log.Warn("cannot fetch issuer keys", "issuer", iss, "error", err)
		return nil, errInvalidToken("Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errInvalidToken("The web identity token signature could not be verified.")
	}
	now := s.now()
	if claims.Expiry == nil {
		return nil, errInvalidToken("The ID Token provided is missing the exp claim.")
	}
	if now.After(claims.Expiry.Time().Add(jwtLeeway)) {
		return nil, senderErr(http.StatusBadRequest, "ExpiredTokenException",
			"Token expired: current date/time %d must be before the expiration date/time%d", now.Unix(), claims.Expiry.Time().Unix())
	}
	if claims.NotBefore != nil && now.Add(jwtLeeway).Before(claims.NotBefore.Time()) {
		return nil, errInvalidToken("Token is not yet valid (nbf).")
	}
	if claims.IssuedAt != nil && now.Add(jwtLeeway).Before(claims.IssuedAt.Time()) {
		return nil, errInvalidToken("Token was issued in the future (iat).")
	}
	if claims.Subject == "" {
		return nil, errInvalidToken("The ID Token provided is missing the sub claim.")
	}
	aud := ""
	for _, a := range claims.Audience {
		for _, cid := range prov.clientIDs {
			if a == cid && aud == "" {
				aud = a
			}
		}
	}
	if aud == "" {
		return nil, errInvalidToken("Incorrect token audience")
	}
	return &webIdentity{issuer: iss, subject: claims.Subject, audience: aud, provider: prov}, nil
}
