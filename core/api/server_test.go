package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
)

func writeCert(t *testing.T, dir string, serial int64) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "irsa-svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestServeTLSReload: cert-manager rewrites the files; new handshakes get the
// new certificate without a restart, and a broken file keeps the old one.
func TestServeTLSReload(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServerOptions{Listener: ln, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
			Handler: NewHandler(Options{}), Logger: hclog.New(&hclog.LoggerOptions{Output: logs})})
	}()
	serial := func() int64 {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
		res, err := c.Get("https://" + ln.Addr().String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if string(b) != "{'status': 'Healthy'}" {
			t.Fatalf("body %q", b)
		}
		return res.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial = %d", s)
	}
	writeCert(t, dir, 2)
	polltest.Until(t, "the rotated certificate", func() bool { return serial() == 2 })
	os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("garbage"), 0o600)
	polltest.Until(t, "the broken file to be refused", func() bool { return logs.Contains("keeping the previous certificate") })
	if s := serial(); s != 2 {
		t.Fatalf("broken file: serial = %d", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("graceful shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestServeRefusesHalfTLS(t *testing.T) {
	err := Serve(context.Background(), ServerOptions{Addr: "127.0.0.1:0", CertFile: "x", Handler: http.NotFoundHandler()})
	if err == nil {
		t.Fatal("certificate without key accepted")
	}
}
