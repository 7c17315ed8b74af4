package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is the provider's YAML configuration:
//
//	issuer: https://keycloak.example.com/realms/domino   # required; discovery at <issuer>/.well-known/openid-configuration
//	audiences: [irsa-broker]                             # required: the token's aud must hold one of them
//	jwks_url: ""                                         # optional: skip discovery and use these keys
//	signing_algs: [RS256, ES256]                         # default
//	clock_skew: 30s                                      # leeway for exp and nbf (default 30s)
//	timeout: 5s                                          # discovery and JWKS requests (default 5s)
//	ca_file: /etc/ssl/issuer-ca.pem                      # extra CA for the issuer
//	claims:
//	  id: sub                                            # default sub
//	  username: preferred_username                       # default preferred_username, then the id
//	  email: email                                       # default email
//	  groups: groups                                     # default groups; dotted paths reach nested claims (realm_access.roles)
//	  organizations: {claim: groups, prefix: /domino-irsa-roles/}   # values with the prefix, prefix stripped
//	  admin: {claim: groups, value: /domino-irsa-admins}            # admin when the claim is or contains value (or is true when value is empty)
type Config struct {
	Issuer      string   `json:"issuer"`
	Audiences   []string `json:"audiences"`
	JWKSURL     string   `json:"jwks_url,omitempty"`
	SigningAlgs []string `json:"signing_algs,omitempty"`
	ClockSkew   Duration `json:"clock_skew,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	CAFile      string   `json:"ca_file,omitempty"`
	Claims      Claims   `json:"claims,omitempty"`
}

// Claims says which claims make the identity.
type Claims struct {
	ID            string     `json:"id,omitempty"`
	Username      string     `json:"username,omitempty"`
	Email         string     `json:"email,omitempty"`
	Groups        string     `json:"groups,omitempty"`
	Organizations OrgClaim   `json:"organizations,omitempty"`
	Admin         AdminClaim `json:"admin,omitempty"`
}

// OrgClaim picks organizations from a claim: every value starting with
// Prefix (all values when Prefix is empty), with the prefix stripped.
type OrgClaim struct {
	Claim  string `json:"claim,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// AdminClaim makes the caller an admin when Claim equals or contains Value,
// or, with Value empty, when Claim is true.
type AdminClaim struct {
	Claim string `json:"claim,omitempty"`
	Value string `json:"value,omitempty"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("want a duration such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("want a non-negative duration such as \"30s\", got %q", s)
	}
	*d = Duration(v)
	return nil
}

var supportedAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// withDefaults validates c and fills in the defaults; errors name the field.
func (c Config) withDefaults() (Config, error) {
	if c.Issuer == "" {
		return c, errors.New("issuer: required")
	}
	if err := httpURL(c.Issuer); err != nil {
		return c, fmt.Errorf("issuer: %w", err)
	}
	if c.JWKSURL != "" {
		if err := httpURL(c.JWKSURL); err != nil {
			return c, fmt.Errorf("jwks_url: %w", err)
		}
	}
	if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
		return c, errors.New("audiences: at least one non-empty audience is required")
	}
	if len(c.SigningAlgs) == 0 {
		c.SigningAlgs = []string{"RS256", "ES256"}
	}
	for _, a := range c.SigningAlgs {
		if !slices.Contains(supportedAlgs, a) {
			return c, fmt.Errorf("signing_algs: %q is not one of %s", a, strings.Join(supportedAlgs, ", "))
		}
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = Duration(30 * time.Second)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(5 * time.Second)
	}
	cl := &c.Claims
	cl.ID = or(cl.ID, "sub")
	cl.Username = or(cl.Username, "preferred_username")
	cl.Email = or(cl.Email, "email")
	cl.Groups = or(cl.Groups, "groups")
	cl.Organizations.Claim = or(cl.Organizations.Claim, cl.Groups)
	return c, nil
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL, got %q", s)
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
