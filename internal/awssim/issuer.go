package awssim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestIssuer is an OIDC issuer for tests and benchmarks: Handler serves a
// discovery document and JWKS, and the issuer mints signed tokens. Package
// awssimtest starts one on a loopback server (plain HTTP needs
// Options.AllowHTTPIssuers).
type TestIssuer struct {
	// URL is where Handler is served: the issuer of the tokens. Set it before
	// the first request or token.
	URL string

	mu     sync.Mutex
	signer jose.Signer
	keys   []jose.JSONWebKey // published (public) keys
	kid    string
	n      int
	alg    jose.SignatureAlgorithm
}

// NewIssuer returns an issuer signing with alg (jose.RS256 or jose.ES256) with
// a fresh key; serve its Handler and set URL.
func NewIssuer(alg jose.SignatureAlgorithm) (*TestIssuer, error) {
	is := &TestIssuer{alg: alg}
	if err := is.Rotate(false); err != nil {
		return nil, fmt.Errorf("test issuer: %w", err)
	}
	return is, nil
}

// Handler serves the discovery document and the JWKS.
func (is *TestIssuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/openid/v1/jwks",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(is.alg)},
		})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		is.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), is.keys...)}
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	return mux
}

// Rotate switches to a new signing key with a new kid. With keepOld the previous public
// key stays published; otherwise only the new one is.
func (is *TestIssuer) Rotate(keepOld bool) error {
	is.mu.Lock()
	defer is.mu.Unlock()
	var priv crypto.Signer
	var err error
	switch is.alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	is.n++
	kid := fmt.Sprintf("key-%d", is.n)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: is.alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(is.alg), Use: "sig"}
	if keepOld {
		is.keys = append(is.keys, pub)
	} else {
		is.keys = []jose.JSONWebKey{pub}
	}
	is.signer, is.kid = signer, kid
	return nil
}

// TokenClaims are the claims Mint puts in a token; zero times are filled in.
type TokenClaims struct {
	Subject   string
	Audience  []string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	Issuer    string // default: the issuer's URL
}

// Mint signs a token for sub and aud valid for ttl from now.
func (is *TestIssuer) Mint(sub string, aud []string, ttl time.Duration) (string, error) {
	now := time.Now()
	return is.MintClaims(TokenClaims{Subject: sub, Audience: aud, IssuedAt: now, NotBefore: now, Expiry: now.Add(ttl)})
}

// MintClaims signs a token with explicit claims.
func (is *TestIssuer) MintClaims(c TokenClaims) (string, error) {
	is.mu.Lock()
	signer := is.signer
	is.mu.Unlock()
	if c.Issuer == "" {
		c.Issuer = is.URL
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(time.Hour)
	}
	claims := jwt.Claims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: jwt.Audience(c.Audience),
		IssuedAt: jwt.NewNumericDate(c.IssuedAt), NotBefore: jwt.NewNumericDate(c.NotBefore),
		Expiry: jwt.NewNumericDate(c.Expiry),
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// StartIssuer serves a new issuer signing with alg on a loopback httptest
// server, over TLS when useTLS (pool then trusts its certificate; pass it as
// Options.IssuerCAs; a plain-HTTP issuer needs Options.AllowHTTPIssuers).
// stop closes the server.
func StartIssuer(alg jose.SignatureAlgorithm, useTLS bool) (is *TestIssuer, pool *x509.CertPool, stop func(), err error) {
	if is, err = NewIssuer(alg); err != nil {
		return nil, nil, nil, err
	}
	ts := httptest.NewUnstartedServer(is.Handler())
	if useTLS {
		ts.StartTLS()
		pool = x509.NewCertPool()
		pool.AddCert(ts.Certificate())
	} else {
		ts.Start()
	}
	is.URL = ts.URL
	return is, pool, ts.Close, nil
}
