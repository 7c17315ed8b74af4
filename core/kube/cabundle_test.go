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

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
	"github.com/prometheus/client_golang/prometheus"
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
	reg := prometheus.NewRegistry()
	go func() {
		done <- PublishCABundle(ctx, cs, CABundleOptions{Namespace: "domino-compute", Name: "irsa-ca-bundle", File: file, Recheck: 50 * time.Millisecond, Registerer: reg})
	}()
	defer func() { cancel(); <-done }()
	published := func(want []byte) func() bool {
		return func() bool {
			cm, err := cs.CoreV1().ConfigMaps("domino-compute").Get(ctx, "irsa-ca-bundle", metav1.GetOptions{})
			return err == nil && cm.Data[KeyCABundle] == string(want)
		}
	}
	polltest.Until(t, "the CA published", published(ca1))
	polltest.Until(t, "irsa_ca_bundle_published at 1", func() bool {
		mfs, _ := reg.Gather()
		return len(mfs) == 1 && mfs[0].GetMetric()[0].GetGauge().GetValue() == 1
	})

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

// The name is the broker's: a ConfigMap planted there by someone else
// (without the label, or with it) is replaced by the broker's CA, and the
// replacement is logged.
func TestPublishCABundleReplacesPlantedCA(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ca.crt")
	ca, _ := selfSigned(t, "ca")
	evil, _ := selfSigned(t, "attacker")
	if err := os.WriteFile(file, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string]map[string]string{"unlabelled": nil, "labelled": {labelManagedBy: managedBy}} {
		planted := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "irsa-ca-bundle", Namespace: "domino-compute", Labels: labels},
			Data: map[string]string{KeyCABundle: string(evil), "extra": "x"}}
		cs := fake.NewClientset(planted)
		var logs syncbuf.Buffer
		mine := ""
		o := CABundleOptions{Namespace: "domino-compute", Name: "irsa-ca-bundle", File: file}
		if err := publishCABundle(context.Background(), cs, o, &mine, hclog.New(&hclog.LoggerOptions{Output: &logs})); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cm, _ := cs.CoreV1().ConfigMaps("domino-compute").Get(context.Background(), "irsa-ca-bundle", metav1.GetOptions{})
		if len(cm.Data) != 1 || cm.Data[KeyCABundle] != string(ca) || cm.Labels[labelManagedBy] != managedBy {
			t.Fatalf("%s: the planted ConfigMap was not replaced: %v %v", name, cm.Labels, cm.Data)
		}
		if !logs.Contains("did not write") {
			t.Errorf("%s: the replacement was not logged:\n%s", name, logs.String())
		}
	}
}
