package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

// issuer is an httptest OIDC issuer whose signing keys can be rotated.
type issuer struct {
	srv *httptest.Server

	mu   sync.Mutex
	keys []jose.JSONWebKey // private keys; the JWKS publishes their public halves
	down bool
	hits int // JWKS fetches
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys",
			"authorization_endpoint": is.srv.URL + "/auth", "token_endpoint": is.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		is.hits++
		if is.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.rotate(t, "RS256")
	return is
}

// rotate replaces the signing keys with a fresh one of alg.
func (is *issuer) rotate(t *testing.T, alg string) jose.JSONWebKey {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	k := jose.JSONWebKey{Key: key, KeyID: alg + "-" + time.Now().Format("150405.000000000"), Algorithm: alg, Use: "sig"}
	is.mu.Lock()
	is.keys = []jose.JSONWebKey{k}
	is.mu.Unlock()
	return k
}

func (is *issuer) current() jose.JSONWebKey {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.keys[0]
}

// sign makes a token with the given key and claims on top of valid defaults.
func (is *issuer) sign(t *testing.T, key jose.JSONWebKey, extra map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{
		"iss": is.srv.URL, "aud": []string{"irsa-broker"}, "sub": "f3c1-alice",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"preferred_username": "alice", "email": "alice@example.com",
		"groups": []string{"/domino-irsa-roles/acme", "/domino-irsa-roles/beta", "/staff"},
	}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (is *issuer) config() []byte {
	return []byte(`issuer: ` + is.srv.URL + `
audiences: [irsa-broker, other]
clock_skew: 30s
claims:
  organizations: {prefix: /domino-irsa-roles/}
  admin: {claim: groups, value: /domino-irsa-admins}
`)
}

func bearer(tok string) sdk.Credentials {
	return sdk.Credentials{Token: tok, Header: sdk.HeaderAuthorization}
}

func TestConformance(t *testing.T) {
	is := newIssuer(t)
	key := is.current()
	alice := is.sign(t, key, nil)
	admin := is.sign(t, key, map[string]any{"sub": "f3c1-root", "preferred_username": "root", "email": nil,
		"groups": []string{"/domino-irsa-admins"}})
	sdktest.Run(t, sdktest.Harness{
		New:    func(*testing.T) sdk.Provider { return New(nil) },
		Config: is.config(),
		InvalidConfigs: map[string][]byte{
			"no issuer":     []byte("audiences: [a]\n"),
			"no audience":   []byte("issuer: https://x\n"),
			"bad issuer":    []byte("issuer: x\naudiences: [a]\n"),
			"bad alg":       []byte("issuer: https://x\naudiences: [a]\nsigning_algs: [none]\n"),
			"bad skew":      []byte("issuer: https://x\naudiences: [a]\nclock_skew: -5s\n"),
			"unknown field": []byte("issuer: https://x\naudiences: [a]\nclaim: {}\n"),
			"bad jwks":      []byte("issuer: https://x\naudiences: [a]\njwks_url: keys\n"),
		},
		Valid: []sdktest.Case{
			{Name: "alice", Creds: bearer(alice), Want: sdk.Identity{ID: "f3c1-alice", Username: "alice", Email: "alice@example.com",
				Organizations: []string{"acme", "beta"}, Groups: []string{"/domino-irsa-roles/acme", "/domino-irsa-roles/beta", "/staff"}}},
			{Name: "root", Creds: bearer(admin), Want: sdk.Identity{ID: "f3c1-root", Username: "root", Admin: true, Groups: []string{"/domino-irsa-admins"}}},
		},
		Invalid: []sdktest.Case{
			{Name: "expired", Creds: bearer(is.sign(t, key, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))},
			{Name: "wrong audience", Creds: bearer(is.sign(t, key, map[string]any{"aud": "someone-else"}))},
			{Name: "wrong issuer", Creds: bearer(is.sign(t, key, map[string]any{"iss": "https://evil.example"}))},
			{Name: "no sub", Creds: bearer(is.sign(t, key, map[string]any{"sub": nil}))},
			{Name: "tampered", Creds: bearer(alice[:len(alice)-4] + "AAAA")},
		},
	})
}

func TestKeyRotation(t *testing.T) {
	is := newIssuer(t)
	p := New(nil)
	ctx := context.Background()
	if err := p.Configure(ctx, is.config()); err != nil {
		t.Fatal(err)
	}
	old := is.current()
	if _, err := p.Authenticate(ctx, bearer(is.sign(t, old, nil))); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"ES256", "RS256"} {
		next := is.rotate(t, alg)
		// A token from the new key: the cached JWKS misses its kid and is refetched.
		id, err := p.Authenticate(ctx, bearer(is.sign(t, next, nil)))
		if err != nil || id.ID != "f3c1-alice" {
			t.Fatalf("%s after rotation: %+v %v", alg, id, err)
		}
		// The retired key no longer verifies. (go-oidc signals a finished
		// fetch a moment before it swaps its cache, so allow that moment.)
		retired := bearer(is.sign(t, old, nil))
		polltest.UntilErr(t, alg+" rotation retiring the old key", func() (bool, error) {
			if _, err := p.Authenticate(ctx, retired); !errors.Is(err, sdk.ErrUnauthenticated) {
				return false, fmt.Errorf("retired key: %v", err)
			}
			return true, nil
		})
		old = next
	}
	// Keys are cached: verifying again does not refetch.
	is.mu.Lock()
	hits := is.hits
	is.mu.Unlock()
	for range 5 {
		if _, err := p.Authenticate(ctx, bearer(is.sign(t, old, nil))); err != nil {
			t.Fatal(err)
		}
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.hits != hits {
		t.Fatalf("JWKS fetched %d more times for known keys", is.hits-hits)
	}
}

func TestIssuerDown(t *testing.T) {
	is := newIssuer(t)
	p := New(nil)
	ctx := context.Background()
	if err := p.Configure(ctx, is.config()); err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	is.down = true
	is.mu.Unlock()
	// The keys cannot be fetched: an outage, not a bad token.
	if _, err := p.Authenticate(ctx, bearer(is.sign(t, is.current(), nil))); !errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("JWKS down: %v", err)
	}
	// Discovery against a closed issuer.
	gone := newIssuer(t)
	q := New(nil)
	if err := q.Configure(ctx, gone.config()); err != nil {
		t.Fatal(err)
	}
	tok := gone.sign(t, gone.current(), nil)
	gone.srv.Close()
	if _, err := q.Authenticate(ctx, bearer(tok)); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("issuer down at discovery: %v", err)
	}
}

func TestClockSkew(t *testing.T) {
	is := newIssuer(t)
	ctx := context.Background()
	now := time.Now()
	key := is.current()
	cases := []struct {
		name string
		exp  time.Time
		nbf  time.Time
		ok   bool
	}{
		{"valid", now.Add(time.Minute), now.Add(-time.Minute), true},
		{"expired within skew", now.Add(-20 * time.Second), now.Add(-time.Minute), true},
		{"expired beyond skew", now.Add(-40 * time.Second), now.Add(-time.Minute), false},
		{"nbf within skew", now.Add(time.Minute), now.Add(20 * time.Second), true},
		{"nbf beyond skew", now.Add(time.Minute), now.Add(40 * time.Second), false},
	}
	p := New(nil, WithClock(func() time.Time { return now }))
	if err := p.Configure(ctx, is.config()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := is.sign(t, key, map[string]any{"exp": c.exp.Unix(), "nbf": c.nbf.Unix(), "iat": c.nbf.Unix()})
			id, err := p.Authenticate(ctx, bearer(tok))
			if c.ok && err != nil || !c.ok && !errors.Is(err, sdk.ErrUnauthenticated) {
				t.Fatalf("err = %v", err)
			}
			if c.ok && id.Expiry.Unix() != c.exp.Unix() {
				t.Fatalf("expiry = %v", id.Expiry)
			}
		})
	}
}

func TestJWKSURLWithoutDiscovery(t *testing.T) {
	is := newIssuer(t)
	p := New(nil)
	cfg := "issuer: " + is.srv.URL + "\njwks_url: " + is.srv.URL + "/keys\naudiences: [irsa-broker]\n"
	if err := p.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authenticate(context.Background(), bearer(is.sign(t, is.current(), nil))); err != nil {
		t.Fatal(err)
	}
}

func TestClaimsMapping(t *testing.T) {
	keycloak := map[string]any{
		"sub": "u-1", "preferred_username": "alice", "email": "a@x",
		"groups":       []any{"/domino-irsa-roles/acme", "/domino-irsa-roles/", "/other/acme", "/domino-irsa-admins"},
		"realm_access": map[string]any{"roles": []any{"irsa-admin", "user"}},
		"is_admin":     true,
		"org":          "solo",
	}
	cases := []struct {
		name string
		cl   Claims
		want sdk.Identity
	}{
		{"keycloak groups", Claims{Organizations: OrgClaim{Prefix: "/domino-irsa-roles/"}, Admin: AdminClaim{Claim: "groups", Value: "/domino-irsa-admins"}},
			sdk.Identity{ID: "u-1", Username: "alice", Email: "a@x", Organizations: []string{"acme"}, Admin: true,
				Groups: []string{"/domino-irsa-roles/acme", "/domino-irsa-roles/", "/other/acme", "/domino-irsa-admins"}}},
		{"nested roles", Claims{Groups: "realm_access.roles", Organizations: OrgClaim{Claim: "org"}, Admin: AdminClaim{Claim: "realm_access.roles", Value: "irsa-admin"}},
			sdk.Identity{ID: "u-1", Username: "alice", Email: "a@x", Organizations: []string{"solo"}, Admin: true, Groups: []string{"irsa-admin", "user"}}},
		{"boolean admin, username from id", Claims{Username: "nickname", Organizations: OrgClaim{Claim: "missing"}, Admin: AdminClaim{Claim: "is_admin"}},
			sdk.Identity{ID: "u-1", Username: "u-1", Email: "a@x", Organizations: []string{}, Admin: true,
				Groups: []string{"/domino-irsa-roles/acme", "/domino-irsa-roles/", "/other/acme", "/domino-irsa-admins"}}},
		{"admin value must match", Claims{Groups: "none", Admin: AdminClaim{Claim: "groups", Value: "/domino-irsa"}},
			sdk.Identity{ID: "u-1", Username: "alice", Email: "a@x", Organizations: []string{}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Config{Issuer: "https://x", Audiences: []string{"a"}, Claims: c.cl}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.Claims.identity(keycloak, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	if _, err := (Claims{ID: "sub"}).identity(map[string]any{"sub": 42}, time.Time{}); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("non-string id: %v", err)
	}
}

func TestNotAJWT(t *testing.T) {
	p := New(nil)
	if err := p.Configure(context.Background(), []byte("issuer: http://127.0.0.1:1\naudiences: [a]\n")); err != nil {
		t.Fatal(err)
	}
	// An API key never reaches the network.
	_, err := p.Authenticate(context.Background(), sdk.Credentials{Token: "domino-api-key", Header: sdk.HeaderDominoAPIKey})
	if !errors.Is(err, sdk.ErrUnauthenticated) || strings.Contains(err.Error(), "domino-api-key") {
		t.Fatal(err)
	}
}

// FuzzIdentity feeds arbitrary JSON claims to the claim mapping: it returns
// an identity with an id or an unauthenticated error, and never panics.
func FuzzIdentity(f *testing.F) {
	f.Add(`{"sub":"u","groups":["/domino-irsa-roles/a"],"realm_access":{"roles":["x"]}}`, "realm_access.roles")
	f.Add(`{"sub":42,"groups":"single"}`, "groups")
	f.Add(`{"a.b":{"b":1}}`, "a.b.c")
	f.Fuzz(func(t *testing.T, raw, path string) {
		var claims map[string]any
		if json.Unmarshal([]byte(raw), &claims) != nil {
			return
		}
		cfg, err := Config{Issuer: "https://x", Audiences: []string{"a"},
			Claims: Claims{Groups: path, Organizations: OrgClaim{Prefix: "/domino-irsa-roles/"}, Admin: AdminClaim{Claim: path, Value: "x"}}}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		id, err := cfg.Claims.identity(claims, time.Time{})
		if err != nil && !errors.Is(err, sdk.ErrUnauthenticated) {
			t.Fatalf("err = %v", err)
		}
		if err == nil && (id.ID == "" || id.Organizations == nil) {
			t.Fatalf("identity = %+v", id)
		}
	})
}
