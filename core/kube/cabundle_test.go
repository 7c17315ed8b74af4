package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
)

func selfSigned(t testing.TB, cn string) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestCABundle(t *testing.T) {
	ca1, key := selfSigned(t, "ca-1")
	ca2, _ := selfSigned(t, "ca-2")
	if got, err := CABundle(append(append([]byte("# a comment\n"), ca1...), ca2...)); err != nil || got != string(ca1)+string(ca2) {
		t.Fatalf("two certificates: %q %v", got, err)
	}
	for name, raw := range map[string][]byte{
		"a key beside the CA":  append(append([]byte{}, ca1...), key...),
		"only a key":           key,
		"empty":                nil,
		"not PEM":              []byte("hello"),
		"a broken certificate": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}),
		"too large":            append(append([]byte{}, ca1...), make([]byte, maxCABundle)...),
	} {
		if got, err := CABundle(raw); err == nil {
			t.Errorf("%s: published %q", name, got)
		}
	}
}

func FuzzCABundle(f *testing.F) {
	ca, key := selfSigned(f, "ca")
	f.Add(ca)
	f.Add(append(append([]byte{}, ca...), key...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := CABundle(raw)
		if err != nil {
			return
		}
		// Whatever is published is certificates only, each one parseable.
		for rest := []byte(got); len(rest) > 0; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil || b.Type != "CERTIFICATE" {
				t.Fatalf("published %q", got)
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestPublishCABundle(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.crt")
	ca1, key := selfSigned(t, "ca-1")
	if err := os.WriteFile(file, ca1, 0o600); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- PublishCABundle(ctx, cs, CABundleOptions{Namespace: "domino-compute", Name: "irsa-ca-bundle", File: file, Recheck: 50 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()
	published := func(want []byte) func() bool {
		return func() bool {
			cm, err := cs.CoreV1().ConfigMaps("domino-compute").Get(ctx, "irsa-ca-bundle", metav1.GetOptions{})
			return err == nil && cm.Data[KeyCABundle] == string(want)
		}
	}
	polltest.Until(t, "the CA published", published(ca1))

	// Renewed (here: a new CA), with nothing done by hand.
	ca2, _ := selfSigned(t, "ca-2")
	if err := os.WriteFile(file, ca2, 0o600); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the new CA published", published(ca2))

	// A deleted ConfigMap comes back.
	if err := cs.CoreV1().ConfigMaps("domino-compute").Delete(ctx, "irsa-ca-bundle", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the deleted bundle republished", published(ca2))

	// A key in the file is never published: the bundle keeps the last good CA.
	if err := os.WriteFile(file, append(append([]byte{}, ca2...), key...), 0o600); err != nil {
		t.Fatal(err)
	}
	ca3, _ := selfSigned(t, "ca-3")
	if err := os.WriteFile(filepath.Join(dir, "next"), ca3, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "next"), file); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the next good CA published", published(ca3))
	cm, _ := cs.CoreV1().ConfigMaps("domino-compute").Get(ctx, "irsa-ca-bundle", metav1.GetOptions{})
	if strings.Contains(cm.Data[KeyCABundle], "PRIVATE KEY") {
		t.Fatal("a private key was published")
	}
}

// A ConfigMap of that name that the broker did not create is not taken over.
func TestPublishCABundleLeavesOthersAlone(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ca.crt")
	ca, _ := selfSigned(t, "ca")
	if err := os.WriteFile(file, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "irsa-ca-bundle", Namespace: "domino-compute"}, Data: map[string]string{"x": "y"}}
	cs := fake.NewClientset(theirs)
	o := CABundleOptions{Namespace: "domino-compute", Name: "irsa-ca-bundle", File: file}
	if err := publishCABundle(context.Background(), cs, o); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Fatalf("publish over a foreign ConfigMap: %v", err)
	}
	cm, _ := cs.CoreV1().ConfigMaps("domino-compute").Get(context.Background(), "irsa-ca-bundle", metav1.GetOptions{})
	if cm.Data["x"] != "y" || cm.Data[KeyCABundle] != "" {
		t.Fatalf("the foreign ConfigMap changed: %v", cm.Data)
	}
}
