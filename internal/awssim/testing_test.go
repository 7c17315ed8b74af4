package awssim

import (
	"crypto/x509"
	"net/http/httptest"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// The helpers of package awssimtest, for this package's own tests, which cannot
// import it (awssimtest imports awssim). Keep the two in step.

func StartTest(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func NewTestIssuer(t testing.TB, alg jose.SignatureAlgorithm) *TestIssuer {
	t.Helper()
	is, _ := startIssuer(t, alg, false)
	return is
}

func NewTestIssuerTLS(t testing.TB, alg jose.SignatureAlgorithm) (*TestIssuer, *x509.CertPool) {
	t.Helper()
	return startIssuer(t, alg, true)
}

func startIssuer(t testing.TB, alg jose.SignatureAlgorithm, useTLS bool) (*TestIssuer, *x509.CertPool) {
	t.Helper()
	is, pool, stop, err := StartIssuer(alg, useTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return is, pool
}
