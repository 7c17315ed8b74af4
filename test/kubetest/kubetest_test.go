package kubetest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestControlPlane starts a control plane and checks what the end-to-end
// tests rely on: anonymous OIDC discovery on the issuer and TokenRequest.
func TestControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(cp.CAPool)}}
	res, err := hc.Get(cp.IssuerURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(res.Body).Decode(&disc)
	res.Body.Close()
	if err != nil || disc.Issuer != cp.IssuerURL || !strings.HasPrefix(disc.JWKSURI, cp.IssuerURL) {
		t.Fatalf("discovery %+v, %v", disc, err)
	}
	res, err = hc.Get(disc.JWKSURI)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("jwks: %v %v", res, err)
	}
	res.Body.Close()

	cs, err := cp.Clientset(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "probe", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"sts.amazonaws.com"}},
	}, metav1.CreateOptions{})
	if err != nil || tr.Status.Token == "" {
		t.Fatalf("TokenRequest: %v", err)
	}
}

// TestPoll: Poll returns once cond holds, stops at a plain error, and on
// timeout names what it waited for and the last Retry error.
func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(context.Background(), time.Millisecond, "three calls", func() (bool, error) {
		n++
		return n == 3, Retry(errors.New("not yet"))
	}); err != nil || n != 3 {
		t.Fatalf("Poll = %v after %d calls", err, n)
	}
	boom := errors.New("boom")
	if err := Poll(context.Background(), time.Millisecond, "x", func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("plain error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Poll(ctx, time.Millisecond, "the moon", func() (bool, error) { return false, Retry(errors.New("still dark")) })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "the moon") || !strings.Contains(err.Error(), "still dark") {
		t.Fatalf("timeout: %v", err)
	}
}
