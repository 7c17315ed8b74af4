package devstack

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a dev OIDC issuer that signs tokens shaped like Kubernetes
// projected service-account tokens. It serves discovery and JWKS so the
// simulator verifies its tokens exactly as AWS verifies a cluster's.
type Issuer struct {
	URL    string // e.g. http://127.0.0.1:6000/dev/oidc
	key    *rsa.PrivateKey
	keyID  string
	signer jose.Signer
}

// NewIssuer makes an issuer with a fresh RSA key.
func NewIssuer(url string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	kid := fmt.Sprintf("dev-%d", time.Now().UnixNano())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, err
	}
	return &Issuer{URL: url, key: key, keyID: kid, signer: signer}, nil
}

// k8sClaims are the kubernetes.io claims of a projected token.
type k8sClaims struct {
	Namespace      string `json:"namespace"`
	Pod            ref    `json:"pod"`
	ServiceAccount ref    `json:"serviceaccount"`
}

type ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// WorkloadToken signs a token for service account sa in namespace ns, valid for ttl.
func (i *Issuer) WorkloadToken(ns, sa, pod string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.Claims{
		Issuer:    i.URL,
		Subject:   "system:serviceaccount:" + ns + ":" + sa,
		Audience:  jwt.Audience{"sts.amazonaws.com"},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
	}
	extra := map[string]any{"kubernetes.io": k8sClaims{Namespace: ns, Pod: ref{Name: pod, UID: "dev-" + pod}, ServiceAccount: ref{Name: sa, UID: "dev-" + sa}}}
	return jwt.Signed(i.signer).Claims(claims).Claims(extra).Serialize()
}

// Discovery serves /.well-known/openid-configuration.
func (i *Issuer) Discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                i.URL,
		"jwks_uri":                              i.URL + "/keys",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

// JWKS serves the public key set.
func (i *Issuer) JWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.keyID, Algorithm: "RS256", Use: "sig"}}})
}
