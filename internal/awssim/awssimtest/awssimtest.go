// Package awssimtest starts the IAM/STS simulator and OIDC issuers for tests.
// (Package awssim's own tests cannot import it: they keep thin copies of
// these wrappers in awssim/testing_test.go.)
package awssimtest

import (
	"crypto/x509"
	"net/http/httptest"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/irsa-broker/irsa-broker/internal/awssim"
)

// StartTest starts a simulator on an httptest server (closed when the test ends) and
// returns it and its URL, for BaseEndpoint / AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL_STS.
func StartTest(t testing.TB, opts awssim.Options) (*awssim.Server, string) {
	t.Helper()
	s := awssim.New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// NewTestIssuer starts a plain-HTTP issuer signing with alg (jose.RS256 or jose.ES256);
// the simulator needs awssim.Options.AllowHTTPIssuers to trust it.
func NewTestIssuer(t testing.TB, alg jose.SignatureAlgorithm) *awssim.TestIssuer {
	t.Helper()
	is, _ := startIssuer(t, alg, false)
	return is
}

// NewTestIssuerTLS starts an HTTPS issuer; the returned pool trusts its certificate
// (pass it as awssim.Options.IssuerCAs).
func NewTestIssuerTLS(t testing.TB, alg jose.SignatureAlgorithm) (*awssim.TestIssuer, *x509.CertPool) {
	t.Helper()
	return startIssuer(t, alg, true)
}

func startIssuer(t testing.TB, alg jose.SignatureAlgorithm, useTLS bool) (*awssim.TestIssuer, *x509.CertPool) {
	t.Helper()
	is, pool, stop, err := awssim.StartIssuer(alg, useTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return is, pool
}
